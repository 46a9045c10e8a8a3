"""The serving path: sources by phase, fallbacks, and each post-filter."""

import pytest
from django.utils import timezone

from events.enums import Backend, ConnectionStatus, Phase
from events.models import Connection
from events.services import attendee_set_consents, block_create, not_relevant_create
from recommendations.models import BatchRecommendation, ModelVersion
from recommendations.serving.lists import EVENT_CLOSED, NO_CONSENT_RECEIVE, recommendations_for
from tests.factories import AttendeeFactory

from . import backends
from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db


def ids(result):
    """The entries of the source that answered (a short list is filled by later sources)."""
    return [item.attendee_id for item in result.items if item.source == result.source]


def every(result):
    return [item.attendee_id for item in result.items]


@pytest.fixture
def event():
    return ServingEventFactory()


@pytest.fixture
def people(event):
    return attendees(event, 5)


def test_cold_phase_serves_rules(event, people):
    event.phase = Phase.COLD
    event.save()
    viewer, a, _b, c, _d = people
    backends.SCORES["rules"] = {viewer.pk: [(c.pk, 3.0), (a.pk, 2.0)]}
    result = recommendations_for(attendee=viewer)
    assert (result.source, result.phase, result.model_version) == ("rules", "cold", None)
    assert ids(result) == [c.pk, a.pk]
    assert result.items[0].reasons == [{"kind": "rules_test", "text": "from rules", "weight": 3.0}]


def test_live_phase_serves_event_backend_with_published_version(event, people):
    viewer, _a, b, _c, d = people
    version = ModelVersion.objects.create(
        event=event, number=3, status=ModelVersion.Status.PUBLISHED, input_fingerprint="f"
    )
    backends.SCORES["local"] = {viewer.pk: [(b.pk, 0.9), (d.pk, 0.5)]}
    result = recommendations_for(attendee=viewer)
    assert (result.source, result.phase, result.model_version, result.model_version_id) == (
        "local",
        "live",
        3,
        version.pk,
    )
    assert ids(result) == [b.pk, d.pk]


def test_live_personalize_unavailable_falls_back_to_local_then_rules(event, people):
    viewer, a, b, c, _d = people
    event.backend = Backend.PERSONALIZE
    event.save()
    backends.SCORES["personalize"] = {viewer.pk: [(a.pk, 1.0)]}
    backends.SCORES["local"] = {viewer.pk: [(b.pk, 1.0)]}
    backends.SCORES["rules"] = {viewer.pk: [(c.pk, 1.0)]}
    assert recommendations_for(attendee=viewer, use_cache=False).source == "personalize"
    backends.UNAVAILABLE.add("personalize")
    result = recommendations_for(attendee=viewer, use_cache=False)
    assert (result.source, ids(result)) == ("local", [b.pk])
    backends.UNAVAILABLE.add("local")
    result = recommendations_for(attendee=viewer, use_cache=False)
    assert (result.source, ids(result), result.model_version) == ("rules", [c.pk], None)


def test_on_demand_serves_batch_row_and_refilters_it(event, people):
    viewer, a, _b, _c, d = people
    event.phase = Phase.ON_DEMAND
    event.save()
    BatchRecommendation.objects.create(
        event=event,
        attendee=viewer,
        source="local",
        items=[
            {"attendee_id": d.pk, "score": 0.8, "reasons": [{"kind": "shared_room", "text": "Room 1", "weight": 0.8}]},
            {"attendee_id": a.pk, "score": 0.4, "reasons": []},
        ],
        computed_at=timezone.now(),
    )
    result = recommendations_for(attendee=viewer)
    assert (result.source, ids(result)) == ("batch", [d.pk, a.pk])
    assert result.items[0].reasons == [{"kind": "shared_room", "text": "Room 1", "weight": 0.8}]
    # A block made after the batch still applies to it.
    block_create(blocker=d, blocked=viewer)
    assert ids(recommendations_for(attendee=viewer)) == [a.pk]


def test_on_demand_without_batch_row_falls_back_to_live_source(event, people):
    viewer, a, *_ = people
    event.phase = Phase.ON_DEMAND
    event.save()
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 1.0)]}
    result = recommendations_for(attendee=viewer)
    assert (result.source, ids(result)) == ("local", [a.pk])


def test_closed_serves_last_batch_or_nothing(event, people):
    viewer, a, b, *_ = people
    event.phase = Phase.CLOSED
    event.save()
    result = recommendations_for(attendee=b)
    assert (result.items, result.source, result.empty_reason) == ([], "", EVENT_CLOSED)
    BatchRecommendation.objects.create(
        event=event,
        attendee=viewer,
        items=[{"attendee_id": a.pk, "score": 1.0, "reasons": []}],
        computed_at=timezone.now(),
    )
    result = recommendations_for(attendee=viewer)
    assert (result.source, ids(result), result.empty_reason) == ("batch", [a.pk], "")


def test_filter_self(event, people):
    viewer, a, *_ = people
    backends.SCORES["local"] = {viewer.pk: [(viewer.pk, 9.0), (a.pk, 1.0)]}
    result = recommendations_for(attendee=viewer)
    assert ids(result) == [a.pk]
    assert viewer.pk not in every(result)  # nor in what fills the list


def test_filter_other_event(event, people):
    viewer, a, *_ = people
    stranger = AttendeeFactory(event=ServingEventFactory())
    backends.SCORES["local"] = {viewer.pk: [(stranger.pk, 9.0), (a.pk, 1.0)]}
    result = recommendations_for(attendee=viewer)
    assert ids(result) == [a.pk]
    assert stranger.pk not in every(result)  # nor in what fills the list


def test_filter_candidate_without_consent_be_recommended(event, people):
    viewer, a, b, *_ = people
    attendee_set_consents(attendee=a, consent_be_recommended=False)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 9.0), (b.pk, 1.0)]}
    result = recommendations_for(attendee=viewer)
    assert ids(result) == [b.pk]
    assert a.pk not in every(result)  # nor in what fills the list


def test_viewer_without_consent_receive_gets_empty_list_with_reason(event, people):
    viewer, *_ = people
    attendee_set_consents(attendee=viewer, consent_receive_recommendations=False)
    result = recommendations_for(attendee=viewer)
    assert (result.items, result.empty_reason) == ([], NO_CONSENT_RECEIVE)


def test_candidate_without_training_consent_leaves_model_lists_at_once(event, people):
    viewer, a, b, *_ = people
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 2.0), (b.pk, 1.0)]}
    assert ids(recommendations_for(attendee=viewer)) == [a.pk, b.pk]
    attendee_set_consents(attendee=a, consent_training=False)
    # The cached list goes too: the consent change bumps the event's stamp.
    assert ids(recommendations_for(attendee=viewer)) == [b.pk]


def test_viewer_without_training_consent_is_served_by_rules_only(event, people):
    viewer, a, b, *_ = people
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 2.0)]}
    backends.SCORES["rules"] = {viewer.pk: [(b.pk, 1.0)]}
    assert recommendations_for(attendee=viewer).source == "local"
    attendee_set_consents(attendee=viewer, consent_training=False)
    result = recommendations_for(attendee=viewer)
    assert (result.source, ids(result)) == ("rules", [b.pk])


def test_training_consent_does_not_filter_declared_data(event, people):
    viewer, a, *_ = people
    event.phase = Phase.COLD
    event.save()
    backends.SCORES["rules"] = {viewer.pk: [(a.pk, 1.0)]}
    attendee_set_consents(attendee=a, consent_training=False)
    assert ids(recommendations_for(attendee=viewer)) == [a.pk]


@pytest.mark.parametrize("direction", ["viewer_blocks", "viewer_blocked"])
def test_filter_blocks_both_directions(event, people, direction):
    viewer, a, b, *_ = people
    if direction == "viewer_blocks":
        block_create(blocker=viewer, blocked=a)
    else:
        block_create(blocker=a, blocked=viewer)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 9.0), (b.pk, 1.0)]}
    result = recommendations_for(attendee=viewer)
    assert ids(result) == [b.pk]
    assert a.pk not in every(result)  # nor in what fills the list


@pytest.mark.parametrize("status", [ConnectionStatus.REQUESTED, ConnectionStatus.ACCEPTED, ConnectionStatus.DECLINED])
@pytest.mark.parametrize("viewer_requested", [True, False])
def test_filter_connections_of_any_status_both_directions(event, people, status, viewer_requested):
    viewer, a, b, *_ = people
    requester, recipient = (viewer, a) if viewer_requested else (a, viewer)
    Connection.objects.create(event=event, requester=requester, recipient=recipient, status=status)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 9.0), (b.pk, 1.0)]}
    result = recommendations_for(attendee=viewer)
    assert ids(result) == [b.pk]
    assert a.pk not in every(result)  # nor in what fills the list


def test_filter_not_relevant_is_one_direction(event, people):
    viewer, a, b, *_ = people
    not_relevant_create(attendee=viewer, target=a)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 9.0), (b.pk, 1.0)], a.pk: [(viewer.pk, 1.0)]}
    result = recommendations_for(attendee=viewer)
    assert ids(result) == [b.pk]
    assert a.pk not in every(result)  # nor in what fills the list
    assert ids(recommendations_for(attendee=a)) == [viewer.pk]


def test_num_results_cuts_the_list(event, people):
    viewer, a, b, c, d = people
    assert ids(recommendations_for(attendee=viewer, num_results=2)) == [a.pk, b.pk]
    assert ids(recommendations_for(attendee=viewer, num_results=10)) == [a.pk, b.pk, c.pk, d.pk]
