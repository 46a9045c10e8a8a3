"""The ASGI application end to end: origin validation, auth middleware and WebSocket routing."""

import pytest
from channels.testing import WebsocketCommunicator

from matchmaking_site.asgi import application


@pytest.mark.django_db(transaction=True)
async def test_websocket_ping_with_allowed_origin():
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"origin", b"http://localhost:8000")])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "ping"})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "pong"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_foreign_origin_refused():
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
