"""Presence: joins and leaves become room visits with server-computed dwell, whatever the order,
and a missing leave is closed by the heartbeat timeout or the end of the live window."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.utils import timezone

from events import presence
from events.enums import InteractionType
from events.models import Interaction, RoomVisit
from events.services import api_key_create
from matchmaking_site.asgi import application
from matchmaking_site.websocket import CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN
from tests.factories import LIVE_START, AttendeeFactory, EventFactory, LiveEventFactory, RoomFactory, UserFactory

T0 = LIVE_START + timedelta(minutes=5)


@pytest.fixture
def world(db):
    event = EventFactory(slug="summit")
    attendee = AttendeeFactory(event=event, external_id="ada")
    room = RoomFactory(event=event, external_id="keynote")
    return event, attendee, room


def join(world, at, cid="j1", **kwargs):
    event, attendee, room = world
    return presence.presence_join(
        event=event, attendee_id=attendee.pk, room_id=room.pk, at=at, client_event_id=cid, **kwargs
    )


def leave(world, at, cid="l1"):
    event, attendee, room = world
    return presence.presence_leave(event=event, attendee_id=attendee.pk, room_id=room.pk, at=at, client_event_id=cid)


def visit_rows():
    return list(Interaction.objects.values_list("type", "value", "qualifies", "occurred_at", "client_event_id"))


def test_presence_join_then_leave_records_one_visit_with_dwell(world):
    join(world, T0)
    assert Interaction.objects.count() == 0
    leave(world, T0 + timedelta(seconds=95))
    assert visit_rows() == [(InteractionType.JOIN_ROOM, 95.0, True, T0, "j1")]
    visit = RoomVisit.objects.get()
    assert (visit.close_reason, visit.dwell_seconds, visit.interaction_id) == (
        RoomVisit.CloseReason.LEAVE,
        95.0,
        Interaction.objects.get().pk,
    )


def test_presence_short_visit_is_kept_but_does_not_qualify(world):
    join(world, T0)
    leave(world, T0 + timedelta(seconds=59))
    assert visit_rows() == [(InteractionType.JOIN_ROOM, 59.0, False, T0, "j1")]


def test_presence_threshold_comes_from_the_event(world):
    event = world[0]
    event.dwell_thresholds = {"join_room": 300}
    event.save()
    join(world, T0)
    leave(world, T0 + timedelta(seconds=200))
    assert visit_rows() == [(InteractionType.JOIN_ROOM, 200.0, False, T0, "j1")]


def test_presence_leave_before_join_is_paired_when_join_arrives(world):
    leave(world, T0 + timedelta(seconds=70))
    assert Interaction.objects.count() == 0
    assert RoomVisit.objects.get().joined_at is None
    join(world, T0)
    assert visit_rows() == [(InteractionType.JOIN_ROOM, 70.0, True, T0, "j1")]
    assert RoomVisit.objects.count() == 1


def test_presence_leave_earlier_than_join_is_not_paired(world):
    leave(world, T0 - timedelta(seconds=10))
    join(world, T0)
    assert Interaction.objects.count() == 0
    assert RoomVisit.objects.filter(left_at__isnull=True).count() == 1


def test_presence_two_visits_pair_each_leave_with_its_join(world):
    join(world, T0, cid="j1")
    leave(world, T0 + timedelta(seconds=100), cid="l1")
    join(world, T0 + timedelta(seconds=200), cid="j2")
    leave(world, T0 + timedelta(seconds=230), cid="l2")
    assert sorted((cid, value) for _, value, _, _, cid in visit_rows()) == [("j1", 100.0), ("j2", 30.0)]


def test_presence_repeated_join_and_leave_are_duplicates(world):
    assert join(world, T0)[1] is False
    assert join(world, T0)[1] is True
    leave(world, T0 + timedelta(seconds=90))
    assert leave(world, T0 + timedelta(seconds=90))[1] is True
    assert Interaction.objects.count() == 1
    assert RoomVisit.objects.count() == 1


def test_presence_missing_leave_closed_by_heartbeat_timeout_at_last_heartbeat(world):
    visit, _ = join(world, T0, expects_heartbeats=True)
    presence.presence_heartbeat(visit_id=visit.pk, at=T0 + timedelta(seconds=80))
    # Not yet stale: the last heartbeat is more recent than the timeout.
    assert presence.room_visits_close_stale(now=T0 + timedelta(seconds=80) + presence.HEARTBEAT_TIMEOUT) == 0
    now = T0 + timedelta(seconds=81) + presence.HEARTBEAT_TIMEOUT
    assert presence.room_visits_close_stale(now=now) == 1
    assert visit_rows() == [(InteractionType.JOIN_ROOM, 80.0, True, T0, "j1")]
    assert RoomVisit.objects.get().close_reason == RoomVisit.CloseReason.TIMEOUT


def test_presence_platform_visit_without_heartbeats_survives_timeout(world):
    join(world, T0)  # REST visits send no heartbeats
    assert presence.room_visits_close_stale(now=T0 + timedelta(hours=1)) == 0


def test_presence_missing_leave_closed_at_end_of_live_window(world):
    event = world[0]
    join(world, event.live_ends_at - timedelta(minutes=2))
    assert presence.room_visits_close_stale(now=event.live_ends_at + timedelta(minutes=1)) == 1
    assert visit_rows() == [(InteractionType.JOIN_ROOM, 120.0, True, event.live_ends_at - timedelta(minutes=2), "j1")]
    assert RoomVisit.objects.get().close_reason == RoomVisit.CloseReason.LIVE_WINDOW_END
    assert presence.room_visits_close_stale(now=event.live_ends_at + timedelta(minutes=2)) == 0


def test_presence_through_rest_batches_out_of_order(client, world):
    event = world[0]
    _, secret = api_key_create(organization=event.organization, name="platform")

    def send(items):
        return client.post(
            "/api/v1/events/summit/interactions/",
            {"interactions": items},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {secret}",
        ).json()

    base = {"attendee_id": "ada", "context_kind": "room", "context_id": "keynote"}
    first = send(
        [
            {
                **base,
                "client_event_id": "l1",
                "type": "leave_room",
                "occurred_at": (T0 + timedelta(seconds=75)).isoformat(),
            }
        ]
    )
    second = send([{**base, "client_event_id": "j1", "type": "join_room", "occurred_at": T0.isoformat()}])
    again = send([{**base, "client_event_id": "j1", "type": "join_room", "occurred_at": T0.isoformat()}])
    assert [first["accepted"], second["accepted"], again["duplicate"]] == [1, 1, 1]
    assert visit_rows() == [(InteractionType.JOIN_ROOM, 75.0, True, T0, "j1")]


# --- The WebSocket consumer -------------------------------------------------------------------------


@pytest.fixture
async def _close_thread_connections():
    """The consumer's ORM calls run in asgiref's worker thread, whose persistent connection would
    outlive the test and block dropping the test database."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def signed_in(transactional_db, _close_thread_connections):
    event = LiveEventFactory(slug="summit")
    user = UserFactory()
    attendee = AttendeeFactory(event=event, user=user, external_id="ada")
    RoomFactory(event=event, external_id="keynote")
    client = Client()
    client.force_login(user)
    return attendee, client.cookies["sessionid"].value


def communicator(path, session=None):
    headers = [(b"origin", b"http://localhost:8000")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def test_presence_websocket_connect_is_join_and_disconnect_is_leave(signed_in):
    attendee, session = signed_in
    ws = communicator("/ws/events/summit/rooms/keynote/presence/", session)
    connected, _ = await ws.connect(timeout=10)
    assert connected
    hello = await ws.receive_json_from(timeout=10)
    assert hello["type"] == "joined"
    assert hello["heartbeat_interval"] == 30
    await ws.send_json_to({"type": "heartbeat"})
    assert (await ws.receive_json_from(timeout=10)) == {"type": "heartbeat_ack", "visit": hello["visit"], "count": 1}
    await ws.disconnect()
    visit = await sync_to_async(RoomVisit.objects.get)()
    interaction = await sync_to_async(Interaction.objects.get)()
    assert (visit.pk, visit.attendee_id, visit.close_reason, visit.expects_heartbeats) == (
        hello["visit"],
        attendee.pk,
        RoomVisit.CloseReason.LEAVE,
        True,
    )
    assert (interaction.type, interaction.value, interaction.qualifies) == (
        InteractionType.JOIN_ROOM,
        visit.dwell_seconds,
        False,
    )


async def test_presence_websocket_anonymous_is_refused(signed_in):
    ws = communicator("/ws/events/summit/rooms/keynote/presence/")
    connected, code = await ws.connect(timeout=10)
    assert (connected, code) == (False, CLOSE_NOT_SIGNED_IN)


async def test_presence_websocket_unknown_room_or_foreign_event_is_refused(signed_in):
    _, session = signed_in
    await sync_to_async(EventFactory)(slug="other")
    for path in ("/ws/events/summit/rooms/nowhere/presence/", "/ws/events/other/rooms/keynote/presence/"):
        connected, code = await communicator(path, session).connect(timeout=10)
        assert (connected, code) == (False, CLOSE_NOT_FOUND)
    assert await sync_to_async(RoomVisit.objects.count)() == 0


async def test_presence_websocket_heartbeat_after_timeout_opens_a_new_visit(signed_in):
    _, session = signed_in
    ws = communicator("/ws/events/summit/rooms/keynote/presence/", session)
    await ws.connect(timeout=10)
    first = (await ws.receive_json_from(timeout=10))["visit"]
    later = timezone.now() + presence.HEARTBEAT_TIMEOUT + timedelta(seconds=1)
    assert await sync_to_async(presence.room_visits_close_stale)(now=later) == 1
    await ws.send_json_to({"type": "heartbeat"})
    ack = await ws.receive_json_from(timeout=10)
    while ack["type"] == "room.presence":  # the room page's live changes of who is here, not our answer
        ack = await ws.receive_json_from(timeout=10)
    assert ack["type"] == "heartbeat_ack"
    assert ack["visit"] != first
    await ws.disconnect()
    reasons = await sync_to_async(lambda: sorted(RoomVisit.objects.values_list("close_reason", flat=True)))()
    assert reasons == [RoomVisit.CloseReason.LEAVE, RoomVisit.CloseReason.TIMEOUT]
    assert await sync_to_async(Interaction.objects.count)() == 2


def _session_of(attendee) -> str:
    client = Client()
    client.force_login(attendee.user)
    return client.cookies["sessionid"].value


async def test_a_room_page_gets_the_list_once_then_one_change_per_message(signed_in):
    """Each change is sent as itself ("joined" or "left", with the head count), never as the
    room's list: a full list to everyone on each change grew as the room's size squared."""
    ada, session = signed_in
    event = await sync_to_async(lambda: ada.event)()
    room = await sync_to_async(lambda: event.rooms.get(external_id="keynote"))()
    # 40 people already in the room (joined by the platform's API path, not by pages)
    crowd = await sync_to_async(lambda: [AttendeeFactory(event=event) for _ in range(40)])()
    for person in crowd:
        await sync_to_async(presence.presence_join)(
            event=event, attendee_id=person.pk, room_id=room.pk, client_event_id=f"c{person.pk}", at=timezone.now()
        )
    ws = communicator("/ws/events/summit/rooms/keynote/presence/", session)
    await ws.connect(timeout=10)
    hello = await ws.receive_json_from(timeout=10)
    assert hello["count"] == 41 and len(hello["people"]) == 41  # the base: everyone, Ada included

    bob = await sync_to_async(AttendeeFactory)(event=event, user=await sync_to_async(UserFactory)(), display_name="Bob")
    bob_ws = communicator("/ws/events/summit/rooms/keynote/presence/", await sync_to_async(_session_of)(bob))
    await bob_ws.connect(timeout=10)
    joined = await ws.receive_json_from(timeout=10)
    assert joined == {
        "type": "room.presence",
        "joined": {"external_id": bob.external_id, "display_name": "Bob"},
        "count": 42,
    }
    await bob_ws.disconnect()
    left = await ws.receive_json_from(timeout=10)
    assert left == {"type": "room.presence", "left": bob.external_id, "count": 41}

    # a page whose list drifted (a message lost) asks for the list again
    await ws.send_json_to({"type": "presence.sync"})
    snapshot = await ws.receive_json_from(timeout=10)
    assert snapshot["type"] == "room.snapshot" and snapshot["count"] == 41
    assert {p["external_id"] for p in snapshot["people"]} == {ada.external_id} | {p.external_id for p in crowd}
    await ws.disconnect()
