"""Sending to the Redis channel layer from synchronous code (`matchmaking_site.layer.group_send`):
every send arrives, and a process's sends share connections instead of opening one each."""

import asyncio
import threading

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings

from matchmaking_site import layer as layer_send

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis channel layer is in use only with REDIS_URL")


def _connections_received() -> int:
    return int(redis.Redis.from_url(settings.REDIS_URL).info("stats")["total_connections_received"])


def _receive_all(channel: str, n: int) -> list[dict]:
    layer = get_channel_layer()

    async def receive():
        return [await asyncio.wait_for(layer.receive(channel), timeout=5) for _ in range(n)]

    return asyncio.run(receive())


def test_sends_from_threads_without_a_loop_arrive_in_order_over_shared_connections():
    layer = get_channel_layer()
    channel = asyncio.run(layer.new_channel())
    group = "test-layer-send"
    asyncio.run(layer.group_add(group, channel))
    before = _connections_received()
    errors: list[BaseException] = []

    def sender(k: int) -> None:
        try:
            for i in range(25):
                layer_send.group_send(group, {"type": "test.message", "sender": k, "i": i})
        except BaseException as exc:  # the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    opened = _connections_received() - before
    got = _receive_all(channel, 100)
    asyncio.run(layer.group_discard(group, channel))

    assert errors == []
    for k in range(4):
        assert [m["i"] for m in got if m["sender"] == k] == list(range(25))  # each thread's sends in order
    # async_to_sync from these threads opened a connection per send (100); the sending loop's pool
    # keeps a few (concurrent sends may each need one).
    assert opened <= 8, opened


def test_a_forked_process_gets_a_sending_loop_of_its_own(monkeypatch):
    first = layer_send._sender_loop()
    assert layer_send._sender_loop() is first
    monkeypatch.setattr(layer_send, "_loop_pid", -1)  # as a forked child sees the parent's loop
    second = layer_send._sender_loop()
    assert second is not first and second.is_running()


def test_a_burst_beyond_the_pool_cap_waits_for_connections_instead_of_failing(settings):
    """300 joins and leaves at once on one loop (as 300 WebSocket handshakes, then closes, in one
    process) with a cap of 20 connections: channels_redis's own pool raised MaxConnectionsError
    past its cap; this one waits."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYER_MAX_CONNECTIONS = 20
    layer = channel_layers.make_backend("default")

    async def burst():
        channels = [await layer.new_channel() for _ in range(300)]
        await asyncio.gather(*(layer.group_add("test-burst", c) for c in channels))
        joined = await layer.connection(layer.consistent_hash("test-burst")).zcard(layer._group_key("test-burst"))
        await asyncio.gather(*(layer.group_discard("test-burst", c) for c in channels))
        left = await layer.connection(layer.consistent_hash("test-burst")).zcard(layer._group_key("test-burst"))
        await layer.close_pools()
        return joined, left

    assert asyncio.run(burst()) == (300, 0)


def test_a_send_that_hangs_fails_after_the_timeout_and_is_not_left_running(monkeypatch):
    cancelled = threading.Event()

    class Hanging(layer_send.WaitingPoolRedisChannelLayer):
        async def group_send(self, group, message):
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    monkeypatch.setattr(layer_send, "get_channel_layer", lambda: Hanging(hosts=[settings.REDIS_URL]))
    monkeypatch.setattr(layer_send, "SEND_TIMEOUT", 0.2)
    with pytest.raises(TimeoutError):
        layer_send.group_send("test-hang", {"type": "test.message"})
    assert cancelled.wait(5)
