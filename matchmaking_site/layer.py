"""The Redis channel layer's connections: a pool that waits at its cap, and one sending loop per
process for synchronous code (pushes, presence, messages, dashboards).

`WaitingPoolRedisChannelLayer` (settings.CHANNEL_LAYERS): channels_redis builds redis-py's asyncio
`ConnectionPool`, which at its cap (100 connections per event loop, redis-py 8) raises
MaxConnectionsError at once instead of waiting. A burst of WebSocket handshakes or closes (1,000
widgets of benchmarks/push_latency.py connecting, then leaving) joins and leaves groups all at
once: some handshakes failed (403) and some closes left their group entries behind. Its pool is
redis-py's `BlockingConnectionPool`, which waits for a free connection (CHANNEL_LAYER_POOL_TIMEOUT).

`async_to_sync(layer.group_send)` called from a thread that no event loop runs behind (the live
push's thread pool, a Celery task) starts a new event loop for that one call, and channels_redis
keeps its connection pools per loop: every send opened a Redis connection, sent one command and
closed it again, and the loop's start and teardown with it (a fifth of a web process's time in
benchmarks/push_latency.py at 1,000 widgets). Here every send of a process to a Redis layer runs on
one long-lived loop of its own, whose pool keeps its connections.

The in-memory layer (the embedded default, one process) keeps `async_to_sync`: its queues live
with the server's loop, and nothing there costs a connection.
"""

from __future__ import annotations

import asyncio
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from redis import asyncio as aioredis

# A send that has not completed by then is abandoned with TimeoutError (Redis answers in
# milliseconds; the layer's own connect timeout is shorter).
SEND_TIMEOUT = 10.0


class WaitingPoolRedisChannelLayer(RedisChannelLayer):
    """channels_redis's layer whose connection pool (per event loop) waits at its cap, for a host
    given by address; a Sentinel host keeps channels_redis's own pool."""

    def create_pool(self, index: int):
        host = dict(self.hosts[index])
        if "address" not in host:
            return super().create_pool(index)
        return aioredis.BlockingConnectionPool.from_url(
            host.pop("address"),
            max_connections=settings.CHANNEL_LAYER_MAX_CONNECTIONS,
            timeout=settings.CHANNEL_LAYER_POOL_TIMEOUT,
            **host,
        )


_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _sender_loop() -> asyncio.AbstractEventLoop:
    """This process's sending loop, started on first use in a daemon thread. Per process id: a
    forked child (a Celery prefork worker) inherits the variable but not the thread."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-send", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def group_send(group: str, message: dict) -> None:
    """`layer.group_send(group, message)` from synchronous code, waiting until it is sent; nothing
    when no channel layer is configured. Raises what the layer raises."""
    layer = get_channel_layer()
    if layer is None:
        return
    if not isinstance(layer, RedisChannelLayer):
        async_to_sync(layer.group_send)(group, message)
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _sender_loop())
    try:
        future.result(timeout=SEND_TIMEOUT)
    except TimeoutError:
        future.cancel()  # not left running on the loop after the caller gave up on it
        raise
