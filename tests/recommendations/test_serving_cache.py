"""The suggestion cache: lists are cached per attendee and model version, and every change that
matters reaches the very next response, long before the TTL."""

import pytest
from django.conf import settings
from django.core.cache import cache

from events.enums import Phase
from events.models import Attendee
from events.services import (
    attendee_set_consents,
    block_create,
    connection_request,
    connection_respond,
    not_relevant_create,
)
from recommendations.models import ModelVersion
from recommendations.serving.cache import list_key
from recommendations.serving.lists import recommendations_for

from . import backends
from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db


def ids(result):
    """The entries of the source that answered (a short list is filled by later sources)."""
    return [item.attendee_id for item in result.items if item.source == result.source]


@pytest.fixture
def event():
    return ServingEventFactory(rules_cache_seconds=600, model_cache_seconds=900)


@pytest.fixture
def people(event):
    viewer, a, b, c = attendees(event, 4)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 3.0), (b.pk, 2.0), (c.pk, 1.0)]}
    backends.SCORES["rules"] = {viewer.pk: [(c.pk, 3.0)]}
    return viewer, a, b, c


def test_second_response_is_cached_and_ignores_backend_changes(people):
    viewer, a, b, c = people
    first = recommendations_for(attendee=viewer)
    backends.SCORES["local"][viewer.pk] = [(c.pk, 9.0)]
    second = recommendations_for(attendee=viewer)
    assert (first.cached, second.cached) == (False, True)
    assert ids(second) == ids(first) == [a.pk, b.pk, c.pk]


def test_cache_is_per_attendee(people):
    viewer, a, _b, _c = people
    recommendations_for(attendee=viewer)
    assert recommendations_for(attendee=a).cached is False


@pytest.mark.parametrize("who_blocks", ["viewer", "candidate"])
def test_block_removes_candidate_from_next_response(people, who_blocks):
    viewer, a, b, c = people
    assert ids(recommendations_for(attendee=viewer)) == [a.pk, b.pk, c.pk]
    if who_blocks == "viewer":
        block_create(blocker=viewer, blocked=a)
    else:
        block_create(blocker=a, blocked=viewer)
    result = recommendations_for(attendee=viewer)
    assert (result.cached, ids(result)) == (False, [b.pk, c.pk])


def test_connection_request_and_answer_invalidate_both_attendees(people):
    viewer, a, b, c = people
    backends.SCORES["local"][b.pk] = [(viewer.pk, 1.0), (c.pk, 0.5)]
    recommendations_for(attendee=viewer)
    recommendations_for(attendee=b)
    connection = connection_request(requester=b, recipient=viewer)
    assert ids(recommendations_for(attendee=viewer)) == [a.pk, c.pk]
    assert ids(recommendations_for(attendee=b)) == [c.pk]
    recommendations_for(attendee=viewer)
    connection_respond(connection=connection, responder=viewer, accept=False)
    assert recommendations_for(attendee=viewer).cached is False


def test_not_relevant_removes_candidate_from_next_response(people):
    viewer, a, b, c = people
    recommendations_for(attendee=viewer)
    not_relevant_create(attendee=viewer, target=b)
    assert ids(recommendations_for(attendee=viewer)) == [a.pk, c.pk]


def test_candidate_withdrawing_consent_leaves_every_cached_list(people):
    viewer, a, b, c = people
    recommendations_for(attendee=viewer)
    attendee_set_consents(attendee=a, consent_be_recommended=False)
    assert ids(recommendations_for(attendee=viewer)) == [b.pk, c.pk]


def test_viewer_withdrawing_receive_consent_gets_empty_list_at_once(people):
    viewer, *_ = people
    recommendations_for(attendee=viewer)
    attendee_set_consents(attendee=viewer, consent_receive_recommendations=False)
    assert recommendations_for(attendee=viewer).items == []
    attendee_set_consents(attendee=viewer, consent_receive_recommendations=True)
    assert recommendations_for(attendee=viewer).cached is False


def test_unrelated_consent_change_keeps_cache(people):
    viewer, a, *_ = people
    recommendations_for(attendee=viewer)
    # `a` no longer wants suggestions: that is `a`'s own list, not who appears in the viewer's.
    attendee_set_consents(attendee=a, consent_receive_recommendations=False)
    assert recommendations_for(attendee=viewer).cached is True


def test_candidate_withdrawing_training_consent_drops_cached_model_lists(people):
    viewer, *_ = people
    first = recommendations_for(attendee=viewer)
    shown = first.items[0].attendee_id
    attendee_set_consents(attendee=Attendee.objects.get(pk=shown), consent_training=False)
    again = recommendations_for(attendee=viewer)
    assert again.cached is False and shown not in [item.attendee_id for item in again.items]


def test_new_published_model_version_invalidates_event(event, people):
    viewer, _a, _b, c = people
    first = recommendations_for(attendee=viewer)
    backends.SCORES["local"][viewer.pk] = [(c.pk, 9.0)]
    ModelVersion.objects.create(event=event, number=1, status=ModelVersion.Status.PUBLISHED, input_fingerprint="x")
    second = recommendations_for(attendee=viewer)
    assert (first.model_version, second.model_version, second.cached, ids(second)) == (None, 1, False, [c.pk])


def test_kept_model_version_keeps_cache(event, people):
    viewer, *_ = people
    recommendations_for(attendee=viewer)
    ModelVersion.objects.create(event=event, number=1, status=ModelVersion.Status.KEPT, input_fingerprint="x")
    assert recommendations_for(attendee=viewer).cached is True


def test_phase_change_switches_source_at_once(event, people):
    viewer, _a, _b, c = people
    assert recommendations_for(attendee=viewer).source == "local"
    event.phase = Phase.COLD
    event.save()
    result = recommendations_for(attendee=viewer)
    assert (result.source, ids(result)) == ("rules", [c.pk])


@pytest.mark.skipif(not settings.REDIS_URL, reason="reads the TTL from Redis")
@pytest.mark.parametrize(("phase", "expected"), [(Phase.COLD, 600), (Phase.LIVE, 900)])
def test_ttl_follows_source(event, people, phase, expected):
    viewer, *_ = people
    event.phase = phase
    event.save()
    recommendations_for(attendee=viewer)
    key = list_key(event_id=event.pk, attendee_id=viewer.pk)
    client = cache._cache.get_client(key)
    ttl = client.ttl(cache.make_and_validate_key(key))
    assert expected - 5 <= ttl <= expected


def test_a_who_may_meet_whom_rule_reaches_the_next_response_of_a_model_list(event, people):
    """The organizer limits sponsors to buyers while lists are cached: the model's cached list
    (which knows nothing of rules) drops the other sponsor at once, and a rule removed brings
    them back."""
    from recommendations.models import MatchmakingRule

    viewer, a, b, c = people
    Attendee.objects.filter(pk__in=[viewer.pk, a.pk]).update(group="sponsor")
    Attendee.objects.filter(pk__in=[b.pk, c.pk]).update(group="buyer")
    viewer.refresh_from_db()
    assert ids(recommendations_for(attendee=viewer)) == [a.pk, b.pk, c.pk]
    rule = MatchmakingRule.objects.create(event=event, kind="allow", from_group="sponsor", to_group="buyer")
    result = recommendations_for(attendee=viewer)
    assert (result.cached, ids(result)) == (False, [b.pk, c.pk])
    assert a.pk not in {item.attendee_id for item in recommendations_for(attendee=viewer, num_results=50).items}
    rule.delete()
    assert ids(recommendations_for(attendee=viewer)) == [a.pk, b.pk, c.pk]


def test_a_group_change_reaches_every_cached_list(event, people):
    from recommendations.models import MatchmakingRule

    viewer, a, b, c = people
    Attendee.objects.filter(pk=viewer.pk).update(group="sponsor")
    Attendee.objects.filter(pk__in=[a.pk, b.pk, c.pk]).update(group="buyer")
    viewer.refresh_from_db()
    MatchmakingRule.objects.create(event=event, kind="allow", from_group="sponsor", to_group="buyer")
    assert ids(recommendations_for(attendee=viewer)) == [a.pk, b.pk, c.pk]
    a.refresh_from_db()
    a.group = "sponsor"
    a.save()  # through the model, as the admin and the API save it
    assert ids(recommendations_for(attendee=viewer)) == [b.pk, c.pk]
