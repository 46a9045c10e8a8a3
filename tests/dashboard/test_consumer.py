"""The dashboard's WebSocket: organizers of the event hear its pushes; nobody else gets in."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from dashboard.routing import websocket_urlpatterns
from events.groups import ENGAGEMENT_UPDATE
from events.outbox import announce_committed
from matchmaking_site.websocket import CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN
from recommendations.models import TrainingRun
from tests.factories import EventFactory, InteractionFactory, UserFactory

from .factories import organizer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("short_lived_connections")]


async def _connect(user, event_id):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/admin/events/{event_id}/dashboard/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@database_sync_to_async
def _world():
    event = EventFactory()
    return event, organizer(event.organization), organizer(), UserFactory(is_staff=True, is_superuser=True)


async def test_organizer_hears_committed_interactions_of_their_event():
    event, me, _, _ = await _world()
    communicator, connected, _ = await _connect(me, event.pk)
    assert connected
    assert await communicator.receive_json_from(timeout=5) == {"type": "hello", "event_id": event.pk, "seq": 0}
    # What ingestion does after each committed batch: the live-push receiver tells the organizers.
    ids = await database_sync_to_async(
        lambda: [InteractionFactory(attendee__event=event, qualifies=q).pk for q in (True, True, False)]
    )()
    await database_sync_to_async(announce_committed)(event_id=event.pk, interaction_ids=ids)
    message = await communicator.receive_json_from(timeout=5)
    assert (message["type"], message["event_id"], message["interactions"], message["qualifying"]) == (
        ENGAGEMENT_UPDATE,
        event.pk,
        3,
        2,
    )
    await communicator.disconnect()


async def test_organizer_of_another_organization_is_refused_as_not_found():
    event, _, stranger, _ = await _world()
    _communicator, connected, code = await _connect(stranger, event.pk)
    assert (connected, code) == (False, CLOSE_NOT_FOUND)


async def test_anonymous_is_refused():
    event, _, _, _ = await _world()
    _communicator, connected, code = await _connect(AnonymousUser(), event.pk)
    assert (connected, code) == (False, CLOSE_NOT_SIGNED_IN)


async def test_superuser_may_watch_any_event():
    event, _, _, root = await _world()
    communicator, connected, _ = await _connect(root, event.pk)
    assert connected
    await communicator.disconnect()


async def test_organizer_hears_training_runs_move():
    event, me, _, _ = await _world()
    communicator, connected, _ = await _connect(me, event.pk)
    assert connected
    await communicator.receive_json_from(timeout=5)  # hello
    await database_sync_to_async(TrainingRun.objects.create)(event=event, status=TrainingRun.Status.RUNNING)
    message = await communicator.receive_json_from(timeout=5)
    assert (message["type"], message["event_id"], message["reason"]) == (ENGAGEMENT_UPDATE, event.pk, "training")
    await communicator.disconnect()


async def test_pushes_of_another_event_are_not_heard():
    event, me, _, _ = await _world()
    other = await database_sync_to_async(EventFactory)(organization=event.organization)
    communicator, connected, _ = await _connect(me, event.pk)
    assert connected
    await communicator.receive_json_from(timeout=5)  # hello
    await database_sync_to_async(announce_committed)(event_id=other.pk, interaction_ids=[1])
    assert await communicator.receive_nothing(timeout=1)
    await communicator.disconnect()
