from datetime import timedelta

import pytest
from django.utils import timezone

from events import meetings, messages, services
from events.models import (
    Attendee,
    Block,
    Connection,
    EventArchive,
    Interaction,
    Meeting,
    MeetingHold,
    MeetingPlace,
    MeetingWindow,
    Message,
    NotRelevant,
)
from events.privacy import event_purge_due_at, events_purge_expired
from recommendations.backends.local.inputs import load_event_data
from recommendations.serving.lists import recommendations_for
from tests.factories import (
    AttendeeFactory,
    EventFactory,
    InteractionFactory,
    InterestTagFactory,
    OrganizationFactory,
    RoomFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]


@pytest.fixture
def pair():
    """Two attendees of one event who share an interest (so the rules engine pairs them), with a
    room visit, a connection request, a block of a third person and a not-relevant mark."""
    event = EventFactory()
    tag = InterestTagFactory(event=event, label="PostgreSQL")
    alice = AttendeeFactory(event=event, external_id="alice", display_name="Alice")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob")
    carol = AttendeeFactory(event=event, external_id="carol", display_name="Carol")
    for a in (alice, bob, carol):
        services.attendee_set_tags(attendee=a, interests=[tag])
    room = RoomFactory(event=event, external_id="r1", name="Scaling Postgres")
    InteractionFactory(attendee=alice, room=room, client_event_id="a1", value=600)
    services.connection_request(requester=alice, recipient=carol)
    services.block_create(blocker=alice, blocked=carol)
    services.not_relevant_create(attendee=carol, target=alice)
    # Alice and Dave (no shared interest) are connected, have written and booked a meeting.
    dave = AttendeeFactory(event=event, external_id="dave", display_name="Dave")
    asked = services.connection_request(requester=dave, recipient=alice)
    services.connection_respond(connection=asked, responder=alice, accept=True)
    messages.message_send(connection=asked, sender=dave, body="Hi Alice")
    start = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    MeetingWindow.objects.create(event=event, starts_at=start, ends_at=start + timedelta(hours=1))
    MeetingPlace.objects.create(event=event, name="Table 1")
    meeting = meetings.meeting_propose(requester=dave, recipient=alice, starts=[start])
    meetings.meeting_accept(meeting=meeting, by=alice, start=start)
    return event, alice, bob, carol


def trained_attendees(event) -> set[int]:
    data = load_event_data(event=event)
    return {int(pk) for pk in data.attendee_ids[data.inputs.attendee]}


def api_key_for(event):
    return services.api_key_create(organization=event.organization, name="platform")[1]


def test_data_export_holds_profile_interactions_and_links(client, pair):
    event, _alice, _bob, _carol = pair
    response = client.get(
        f"/api/v1/events/{event.slug}/attendees/alice/data/", HTTP_AUTHORIZATION=f"Api-Key {api_key_for(event)}"
    )
    assert response.status_code == 200
    data = response.json()
    assert data["profile"]["display_name"] == "Alice"
    assert data["profile"]["interests"] == ["PostgreSQL"]
    assert [(i["client_event_id"], i["context"], i["value"]) for i in data["interactions"]] == [
        ("a1", "Scaling Postgres", 600.0)
    ]
    assert sorted((c["with"], c["direction"], c["status"]) for c in data["connections"]) == [
        ("carol", "sent", "requested"),
        ("dave", "received", "accepted"),
    ]
    assert data["blocked"] == ["carol"]
    assert [(m["with"], m["sent_by_me"], m["body"]) for m in data["messages"]] == [("dave", False, "Hi Alice")]
    assert [(m["with"], m["status"], m["place"]) for m in data["meetings"]] == [("dave", "booked", "Table 1")]
    assert data["consents"] == {"be_recommended": True, "receive_recommendations": True, "training": True}


def test_data_export_by_the_attendee_themselves(client, pair):
    event, alice, _bob, _carol = pair
    user = UserFactory()
    Attendee.objects.filter(pk=alice.pk).update(user=user)
    client.force_login(user)
    assert client.get(f"/api/v1/events/{event.slug}/attendees/alice/data/").status_code == 200
    # ...but not somebody else's.
    assert client.get(f"/api/v1/events/{event.slug}/attendees/bob/data/").status_code == 404


def test_data_export_other_organization_is_404(client, pair):
    event, _alice, _bob, _carol = pair
    other_key = services.api_key_create(organization=OrganizationFactory(), name="x")[1]
    response = client.get(
        f"/api/v1/events/{event.slug}/attendees/alice/data/", HTTP_AUTHORIZATION=f"Api-Key {other_key}"
    )
    assert response.status_code == 404


def test_erase_removes_every_row_and_every_list(client, pair):
    event, alice, bob, carol = pair
    assert [s.external_id for s in recommendations_for(attendee=bob).items] == ["alice", "carol", "dave"]
    response = client.delete(
        f"/api/v1/events/{event.slug}/attendees/alice/", HTTP_AUTHORIZATION=f"Api-Key {api_key_for(event)}"
    )
    assert response.status_code == 200
    assert response.json()["erased"] == "alice"
    assert not Attendee.objects.filter(pk=alice.pk).exists()
    assert not Interaction.objects.filter(attendee_id=alice.pk).exists()
    assert not Connection.objects.filter(requester_id=alice.pk).exists()
    assert not Block.objects.filter(blocker_id=alice.pk).exists()
    assert not NotRelevant.objects.filter(target_id=alice.pk).exists()
    assert not Message.objects.exists() and not Meeting.objects.exists() and not MeetingHold.objects.exists()
    # Bob's cached list is invalidated at once, not after the TTL.
    assert [s.external_id for s in recommendations_for(attendee=bob).items] == ["carol", "dave"]
    assert carol.pk in Attendee.objects.values_list("pk", flat=True)


def test_withdrawn_training_consent_leaves_next_training(pair):
    event, alice, bob, _carol = pair
    room = alice.interactions.first().room
    InteractionFactory(attendee=bob, room=room, client_event_id="b1", value=600)
    assert trained_attendees(event) == {alice.pk, bob.pk}
    Attendee.objects.filter(pk=alice.pk).update(consent_training=False)
    assert trained_attendees(event) == {bob.pk}


def test_retention_purge_keeps_aggregates_only(pair):
    event, _alice, _bob, _carol = pair
    now = event_purge_due_at(event) + timedelta(seconds=1)
    recent = EventFactory(
        on_demand_ends_at=timezone.now(),
        live_ends_at=timezone.now() - timedelta(days=1),
        live_starts_at=timezone.now() - timedelta(days=2),
    )
    AttendeeFactory(event=recent)
    assert now < event_purge_due_at(recent)
    assert events_purge_expired(now=now) == [event.slug]
    assert not Attendee.objects.filter(event=event).exists()
    assert not Interaction.objects.filter(event=event).exists()
    archive = EventArchive.objects.get(event=event)
    assert (archive.attendees, archive.interactions, archive.qualifying_interactions) == (4, 1, 1)
    assert archive.per_room == {"Scaling Postgres": {"interactions": 1, "dwell_seconds": 600.0}}
    assert Attendee.objects.filter(event=recent).count() == 1


def test_retention_purge_before_due_date_keeps_everything(pair):
    event, *_ = pair
    assert events_purge_expired(now=event_purge_due_at(event) - timedelta(seconds=1)) == []
    assert Attendee.objects.filter(event=event).count() == 4


def test_retention_purge_is_scheduled_daily():
    from django_celery_beat.models import PeriodicTask

    from matchmaking_site.celery import app as celery_app

    celery_app.loader.import_default_modules()  # autodiscovery is lazy: register every app's tasks
    task = PeriodicTask.objects.get(task="events.purge_expired_events")
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "3", "*")
    assert "events.purge_expired_events" in celery_app.tasks
