"""A quiet WebSocket stays open behind the Redis channel layer (a real daphne, real Redis).

Every consumer waits on its channel with a blocking pop that Redis answers after 5 s of quiet.
With redis-py 8's default 5 s client read timeout, the client gave up first, the consumer died and
daphne closed every quiet socket with 1011 about every 5 s (django/channels_redis#422): widgets
reconnected all the time, and a push sent during a reconnect was lost."""

import asyncio
import json

import pytest
from django.conf import settings

from tests.live import asgi_server, needs_redis_layer, server_env

pytestmark = [pytest.mark.slow, needs_redis_layer]

QUIET_SECONDS = 12  # more than two of the channel layer's 5 s blocking pops


def test_a_quiet_websocket_is_still_open_after_several_blocking_pops(django_db_setup):
    import websockets

    with asgi_server(server_env(REDIS_URL=settings.REDIS_URL, CELERY_BROKER_URL="memory://")) as base:
        url = base.replace("http://", "ws://") + "/ws/ping/"

        async def talk() -> dict:
            async with websockets.connect(url, origin=base) as ws:
                await asyncio.sleep(QUIET_SECONDS)
                await ws.send(json.dumps({"type": "ping"}))
                return json.loads(await asyncio.wait_for(ws.recv(), 10))

        assert asyncio.run(talk())["type"] == "pong"
