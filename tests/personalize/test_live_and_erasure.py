"""PutEvents from the ingestion outbox, and erasure through PutItems."""

import json
from datetime import timedelta

import pytest

from recommendations.backends.personalize import mapping, tasks
from recommendations.backends.personalize.models import PersonalizeId
from recommendations.backends.personalize.services import forward_interactions, personalize_erase_attendee
from recommendations.models import TrainingRun
from tests.factories import LIVE_START, InteractionFactory

pytestmark = pytest.mark.django_db


def _tokens(event, kind):
    return dict(PersonalizeId.objects.filter(event=event, kind=kind).values_list("object_id", "token"))


def _event(row, people):
    return {
        "eventId": str(row.pk),
        "eventType": row.type,
        "eventValue": max(row.value or 0.0, 60.0),
        "itemId": people[row.attendee_id],
        "sentAt": row.occurred_at,
    }


def test_forward_sends_one_call_per_context(trained, world, aws):
    _, script, _ = trained
    people = _tokens(world.event, "attendee")
    rooms = _tokens(world.event, "room")
    content = _tokens(world.event, "content")
    interests = _tokens(world.event, "interest")
    i1, i2, i3, i4, i5, _i6, _i7 = world.rows
    # Sorted by context kind then id: content, interest, room hall, room lab. i6 does not
    # qualify and i7's attendee refused training: neither is sent.
    for user, rows in (
        (content[world.talk.pk], [i4]),
        (interests[world.tag.pk], [i5]),
        (rooms[world.hall.pk], [i1, i2]),
        (rooms[world.lab.pk], [i3]),
    ):
        aws.events.add_response(
            "put_events",
            {},
            {
                "trackingId": script.tracking_id,
                "userId": user,
                "sessionId": user,
                "eventList": [_event(r, people) for r in rows],
            },
        )
    result = forward_interactions(event_id=world.event.pk, interaction_ids=[r.pk for r in world.rows])
    aws.events.assert_no_pending_responses()
    assert (result.sent, result.calls, result.skipped, result.remaining, result.error) == (5, 4, 2, [], None)


def test_forward_splits_a_context_into_calls_of_ten(trained, world, aws):
    _, script, _ = trained
    rows = [
        InteractionFactory(attendee=world.ada, room=world.hall, occurred_at=LIVE_START + timedelta(minutes=n))
        for n in range(12)
    ]
    people = _tokens(world.event, "attendee")
    hall = _tokens(world.event, "room")[world.hall.pk]
    for chunk in (rows[:10], rows[10:]):
        aws.events.add_response(
            "put_events",
            {},
            {
                "trackingId": script.tracking_id,
                "userId": hall,
                "sessionId": hall,
                "eventList": [_event(r, people) for r in chunk],
            },
        )
    result = forward_interactions(event_id=world.event.pk, interaction_ids=[r.pk for r in rows])
    aws.events.assert_no_pending_responses()
    assert (result.sent, result.calls) == (12, 2)


def test_forward_task_retries_only_what_was_not_sent(trained, world, aws):
    _, script, _ = trained
    people = _tokens(world.event, "attendee")
    rooms = _tokens(world.event, "room")
    i1, i2, i3 = world.rows[:3]
    hall = {"trackingId": script.tracking_id, "userId": rooms[world.hall.pk], "sessionId": rooms[world.hall.pk]}
    lab = {"trackingId": script.tracking_id, "userId": rooms[world.lab.pk], "sessionId": rooms[world.lab.pk]}
    aws.events.add_response("put_events", {}, {**hall, "eventList": [_event(i1, people), _event(i2, people)]})
    aws.events.add_client_error(
        "put_events",
        service_error_code="ThrottlingException",
        http_status_code=400,
        expected_params={**lab, "eventList": [_event(i3, people)]},
    )
    # The retry (inline in eager mode) re-sends the lab batch only, not the hall batch.
    aws.events.add_response("put_events", {}, {**lab, "eventList": [_event(i3, people)]})
    tasks.forward_interactions.apply(
        kwargs={"event_id": world.event.pk, "interaction_ids": [i1.pk, i2.pk, i3.pk]}, throw=False
    )
    aws.events.assert_no_pending_responses()


def test_forward_before_any_tracker_sends_nothing(aws, world):
    result = forward_interactions(event_id=world.event.pk, interaction_ids=[r.pk for r in world.rows])
    assert (result.sent, result.calls, result.skipped) == (0, 0, 7)


def test_erasure_hides_at_once_and_queues_a_retrain_without_them(trained, world, aws):
    _, script, _ = trained
    bob = _tokens(world.event, "attendee")[world.bob.pk]
    aws.events.add_response(
        "put_items",
        {},
        {
            "datasetArn": script.tdata_arn,
            "items": [{"itemId": bob, "properties": json.dumps({"eventId": script.t, "visibility": "hidden"})}],
        },
    )
    run = personalize_erase_attendee(attendee=world.bob)
    aws.events.assert_no_pending_responses()
    assert (run.kind, run.status, run.trigger) == ("personalize", TrainingRun.Status.PENDING, "erasure")
    assert PersonalizeId.objects.get(token=bob).erased_at is not None
    export = mapping.export_build(event=world.event)
    assert bob not in export.interactions.read().decode()
    assert bob not in export.items.read().decode()
    export.close()
    assert (export.n_interactions, export.n_items) == (3, 2)
    # Served lists drop them at once too, whatever the campaign still returns.
    assert mapping.attendees_for_tokens(event=world.event, tokens=[bob]) == {}
