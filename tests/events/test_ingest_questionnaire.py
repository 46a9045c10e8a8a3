"""Questionnaire hydration: answers become inferred interactions whose weight fades with real ones."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command

from events.enums import InteractionSource, InteractionType
from events.models import Interaction
from events.questionnaire import (
    QUESTIONNAIRE_HALF_LIFE,
    live_qualifying_counts,
    questionnaire_hydrate,
    questionnaire_weight,
    questionnaire_weights,
)
from events.services import api_key_create, attendee_set_tags
from tests.factories import (
    LIVE_START,
    AttendeeFactory,
    EventFactory,
    InteractionFactory,
    InterestTagFactory,
    RoomFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def answers():
    event = EventFactory(slug="summit")
    mlops, rust, k8s = (InterestTagFactory(event=event, slug=s) for s in ("mlops", "rust", "k8s"))
    keynote = RoomFactory(event=event, external_id="keynote")
    ada = AttendeeFactory(event=event, external_id="ada")
    attendee_set_tags(attendee=ada, interests=[mlops, rust], offers=[rust], seeks=[k8s], planned_rooms=[keynote])
    return event, ada, (mlops, rust, k8s), keynote


def hydrated(event):
    return sorted(
        Interaction.objects.filter(event=event).values_list(
            "attendee__external_id", "type", "source", "interest__slug", "room__external_id", "qualifies"
        ),
        key=str,
    )


def test_hydrate_creates_one_row_per_tag_and_planned_room(answers):
    event, _ada, _, _ = answers
    stats = questionnaire_hydrate(event=event)
    assert (stats.created, stats.removed, stats.unchanged) == (4, 0, 0)
    q, src = InteractionType.QUESTIONNAIRE, InteractionSource.QUESTIONNAIRE
    assert hydrated(event) == sorted(
        [
            ("ada", q, src, "k8s", None, True),
            ("ada", q, src, "mlops", None, True),
            ("ada", q, src, "rust", None, True),
            ("ada", q, src, None, "keynote", True),
        ],
        key=str,
    )


def test_hydrate_twice_adds_nothing(answers):
    event = answers[0]
    questionnaire_hydrate(event=event)
    stats = questionnaire_hydrate(event=event)
    assert (stats.created, stats.removed, stats.unchanged) == (0, 0, 4)
    assert Interaction.objects.count() == 4


def test_hydrate_removes_withdrawn_answers_only(answers):
    event, ada, (mlops, _rust, k8s), keynote = answers
    live = InteractionFactory(attendee=ada, room=keynote)
    questionnaire_hydrate(event=event)
    attendee_set_tags(attendee=ada, interests=[mlops], offers=[], seeks=[k8s], planned_rooms=[])
    stats = questionnaire_hydrate(event=event)
    assert (stats.created, stats.removed, stats.unchanged) == (0, 2, 2)
    assert sorted(Interaction.objects.filter(source="questionnaire").values_list("interest__slug", flat=True)) == [
        "k8s",
        "mlops",
    ]
    assert Interaction.objects.filter(pk=live.pk).exists()


def test_hydrate_scoped_to_attendees(answers):
    event, _ada, (mlops, _, _), _ = answers
    grace = AttendeeFactory(event=event, external_id="grace")
    attendee_set_tags(attendee=grace, interests=[mlops])
    assert questionnaire_hydrate(event=event, attendee_ids=[grace.pk]).created == 1
    assert list(Interaction.objects.values_list("attendee_id", flat=True)) == [grace.pk]


def test_hydrate_through_api_and_command(client, answers):
    event = answers[0]
    _, secret = api_key_create(organization=event.organization, name="platform")
    response = client.post(
        "/api/v1/events/summit/questionnaire/hydrate/",
        {"attendee_ids": ["ada"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )
    assert (response.status_code, response.json()) == (200, {"created": 4, "removed": 0, "unchanged": 0})
    out = io.StringIO()
    call_command("hydrate_questionnaires", "--event", "summit", stdout=out)
    assert out.getvalue().strip() == "0 created, 0 removed, 4 unchanged."


def test_questionnaire_weight_halves_every_half_life():
    assert questionnaire_weight(0) == 0.5
    assert questionnaire_weight(int(QUESTIONNAIRE_HALF_LIFE)) == 0.25
    assert questionnaire_weight(int(2 * QUESTIONNAIRE_HALF_LIFE)) == 0.125
    assert questionnaire_weight(5, base=1.0, half_life=5) == 0.5
    assert questionnaire_weight(-3) == 0.5


def test_questionnaire_weights_fade_with_live_qualifying_interactions_only(answers):
    event, ada, _, keynote = answers
    event.interaction_weights = {"questionnaire": 0.8}
    event.save()
    grace = AttendeeFactory(event=event, external_id="grace")
    questionnaire_hydrate(event=event)
    for n in range(10):
        InteractionFactory(attendee=ada, room=keynote, occurred_at=LIVE_START + timedelta(minutes=n))
    InteractionFactory(attendee=ada, room=keynote, value=5, qualifies=False)  # an accidental click
    assert live_qualifying_counts(event=event) == {ada.pk: 10}
    assert questionnaire_weights(event=event) == {ada.pk: 0.4, grace.pk: 0.8}
