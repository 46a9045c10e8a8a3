"""One Redis connection pool per process, however many threads (ASGI requests) use the cache."""

import threading

import pytest
from django.conf import settings
from django.core.cache import caches


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis cache backend is in use only with REDIS_URL")
def test_cache_backends_of_two_threads_share_one_redis_client():
    seen = []

    def use_cache():
        backend = caches["default"]
        backend.set("pool-probe", 1, timeout=5)
        seen.append((backend, backend._cache))

    threads = [threading.Thread(target=use_cache) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (backend_a, client_a), (backend_b, client_b) = seen
    assert backend_a is not backend_b  # Django gives each thread its own backend object...
    assert client_a is client_b  # ...which now share one client, and so one connection pool


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis cache backend is in use only with REDIS_URL")
def test_redis_client_object_is_reused_across_commands():
    backend = caches["default"]
    assert backend._cache.get_client(write=True) is backend._cache.get_client(write=False)


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis cache backend is in use only with REDIS_URL")
def test_set_many_writes_every_value_with_its_expiry(monkeypatch):
    backend = caches["default"]
    monkeypatch.setattr(type(backend._cache), "SET_MANY_CHUNK", 2)  # several commands, as for a large write
    values = {f"set-many-{i}": {"n": i, "blob": bytes([i]) * 3} for i in range(5)} | {"set-many-int": 7}
    backend.set_many(values, timeout=120)
    backend.set_many({"set-many-forever": "x", "set-many-forever-2": "y", "set-many-forever-3": "z"}, timeout=None)
    assert backend.get_many(list(values)) == values
    redis = backend._cache.get_client()
    ttls = [redis.ttl(backend.make_key(k)) for k in values]
    assert all(100 < t <= 120 for t in ttls), ttls
    assert [redis.ttl(backend.make_key(f"set-many-forever{k}")) for k in ("", "-2", "-3")] == [-1] * 3  # no expiry
    backend.set_many({"set-many-0": "gone"}, timeout=0)  # "expire now", as Django defines it
    assert backend.get("set-many-0") is None
    assert backend.incr("set-many-int") == 8  # integers stay plain, as with set()
