"""The suggestions WebSocket: who may subscribe, what they hear, and that nothing is heard of a
transaction that rolled back."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.utils import timezone

from events import groups, services
from events.api.auth import attendee_token_issue
from events.presence import presence_join, presence_leave
from matchmaking_site.asgi import application
from matchmaking_site.websocket import CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN
from recommendations.live import state
from tests.factories import AttendeeFactory, EventFactory, RoomFactory, UserFactory


class Rollback(Exception):
    pass


@pytest.fixture
def summit(transactional_db, close_thread_connections):
    event = EventFactory(slug="summit")
    other = EventFactory(slug="expo")
    room = RoomFactory(event=event, external_id="hall", name="Main hall")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada", user=UserFactory())
    # Bob's activity may not be used (training consent off), so only his presence can put him in Ada's
    # list: the filler of short lists (the most active, then everyone) ranks people by activity.
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob", consent_training=False)
    carol = AttendeeFactory(event=other, external_id="carol", display_name="Carol")
    client = Client()
    client.force_login(ada.user)
    return {
        "event": event,
        "room": room,
        "ada": ada,
        "bob": bob,
        "carol": carol,
        "session": client.cookies["sessionid"].value,
    }


def communicator(path, session=None):
    headers = [(b"origin", b"http://localhost:8000")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def test_suggestions_socket_anonymous_is_refused(summit):
    connected, code = await communicator("/ws/events/summit/suggestions/").connect()
    assert (connected, code) == (False, CLOSE_NOT_SIGNED_IN)


async def test_suggestions_socket_bad_token_is_refused(summit):
    connected, code = await communicator("/ws/events/summit/suggestions/?token=forged").connect()
    assert (connected, code) == (False, CLOSE_NOT_SIGNED_IN)


async def test_suggestions_socket_session_of_another_event_is_refused(summit):
    connected, code = await communicator("/ws/events/expo/suggestions/", summit["session"]).connect()
    assert (connected, code) == (False, CLOSE_NOT_FOUND)


async def test_suggestions_socket_token_cannot_subscribe_to_another_event(summit):
    token = await sync_to_async(attendee_token_issue)(attendee=summit["carol"])
    connected, code = await communicator(f"/ws/events/summit/suggestions/?token={token}").connect()
    assert (connected, code) == (False, CLOSE_NOT_FOUND)
    ws = communicator(f"/ws/events/expo/suggestions/?token={token}")
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_json_from() == {"type": "hello", "seq": 0, "ids": [], "items": []}
    await ws.disconnect()


async def test_suggestions_socket_session_hello_then_diffs_with_consecutive_seq(summit):
    ev, room, ada, bob = summit["event"], summit["room"], summit["ada"], summit["bob"]
    ws = communicator("/ws/events/summit/suggestions/", summit["session"])
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_json_from() == {"type": "hello", "seq": 0, "ids": [], "items": []}
    join = sync_to_async(presence_join)
    await join(event=ev, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    await join(event=ev, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    added = await ws.receive_json_from()
    await sync_to_async(presence_leave)(event=ev, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    removed = await ws.receive_json_from()
    assert (added["type"], added["seq"], added["ids"], added["added"][0]["item"]["reasons"][0]["text"]) == (
        groups.SUGGESTIONS_CHANGED,
        1,
        ["bob"],
        "In 'Main hall' with you right now",
    )
    assert (removed["seq"], removed["ids"], removed["removed"], removed["added"]) == (2, [], ["bob"], [])
    # Ada alone in the hall again: her list is what it was, nothing more to say.
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()
    assert await sync_to_async(state.watched)([ada.pk]) == []


async def test_suggestions_socket_rolled_back_block_is_never_delivered(summit):
    ev, room, ada, bob = summit["event"], summit["room"], summit["ada"], summit["bob"]
    join = sync_to_async(presence_join)
    await join(event=ev, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    await join(event=ev, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    ws = communicator("/ws/events/summit/suggestions/", summit["session"])
    await ws.connect()
    assert (await ws.receive_json_from())["ids"] == ["bob"]

    def block_then_fail():
        with transaction.atomic():
            services.block_create(blocker=bob, blocked=ada)
            raise Rollback

    with pytest.raises(Rollback):
        await sync_to_async(block_then_fail)()
    assert await ws.receive_nothing(timeout=0.5)
    # The same block, committed, is delivered: the silence above was the rollback's.
    await sync_to_async(services.block_create)(blocker=bob, blocked=ada)
    message = await ws.receive_json_from()
    assert (message["seq"], message["ids"], message["removed"]) == (1, [], ["bob"])
    await ws.disconnect()


async def test_token_socket_opens_from_another_origin_but_session_socket_does_not(summit):
    """The embedded widget lives on the platform's domain: its token is its credential. A cookie
    session from a foreign origin is what the origin check exists to stop."""
    token = await sync_to_async(attendee_token_issue)(attendee=summit["ada"])
    foreign = [(b"origin", b"https://platform.example")]
    ws = WebsocketCommunicator(application, f"/ws/events/summit/suggestions/?token={token}", headers=foreign)
    connected, _ = await ws.connect()
    assert connected
    assert (await ws.receive_json_from())["type"] == "hello"
    await ws.disconnect()
    cookie = (b"cookie", f"sessionid={summit['session']}".encode())
    ws = WebsocketCommunicator(application, "/ws/events/summit/suggestions/", headers=[*foreign, cookie])
    connected, _ = await ws.connect()
    assert connected is False


async def test_organizers_hear_engagement_counts_after_commit(summit):
    from channels.layers import get_channel_layer

    from events.ingestion import ingest_payload

    ev, ada = summit["event"], summit["ada"]
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(groups.organizers_group(ev.pk), channel)
    now = timezone.now()

    def ingest():
        ev.live_starts_at = now - timezone.timedelta(hours=1)
        ev.live_ends_at = now + timezone.timedelta(hours=1)
        ev.on_demand_ends_at = now + timezone.timedelta(days=1)
        ev.save()
        return ingest_payload(
            event=ev,
            payload=[
                {
                    "client_event_id": f"e{i}",
                    "attendee_id": ada.external_id,
                    "context_kind": "room",
                    "context_id": "hall",
                    "type": "join_room",
                    "value": value,
                    "occurred_at": now.isoformat(),
                }
                for i, value in enumerate([120.0, 5.0, 90.0])
            ],
        )

    await sync_to_async(ingest)()
    message = await layer.receive(channel)
    assert {k: message[k] for k in ("type", "seq", "event_id", "interactions", "qualifying")} == {
        "type": groups.ENGAGEMENT_UPDATE,
        "seq": 1,
        "event_id": ev.pk,
        "interactions": 3,
        "qualifying": 2,
    }
    await layer.group_discard(groups.organizers_group(ev.pk), channel)


async def test_a_message_in_a_thread_is_pushed_on_the_widget_socket(summit):
    from events import messages

    ada, bob = summit["ada"], summit["bob"]
    asked = await sync_to_async(services.connection_request)(requester=bob, recipient=ada)
    await sync_to_async(services.connection_respond)(connection=asked, responder=ada, accept=True)
    ws = communicator("/ws/events/summit/suggestions/", summit["session"])
    assert (await ws.connect())[0]
    assert (await ws.receive_json_from())["type"] == "hello"
    await sync_to_async(messages.message_send)(connection=asked, sender=bob, body="See you at the table")
    pushed = await ws.receive_json_from(timeout=5)
    while pushed["type"] != "message.new":  # a suggestions diff may come first
        pushed = await ws.receive_json_from(timeout=5)
    assert pushed == {
        "type": "message.new",
        "thread": asked.pk,
        "message": {
            "number": 1,
            "sender": "bob",
            "body": "See you at the table",
            "sent_at": pushed["message"]["sent_at"],
        },
    }
    await ws.disconnect()
