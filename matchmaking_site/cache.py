"""A Redis cache that degrades instead of failing while Redis is unreachable.

Everything this project keeps in the cache is derived or advisory: suggestion lists (recomputed
on a miss), version stamps, presence hints, throttle and login counters, exposure counters. So
while Redis is down a read is a miss, a write is dropped, and the request goes on: the database
stays the record, and ingestion keeps accepting interactions (the outbox processes them later).
Short socket timeouts keep a hung Redis from stalling requests.
"""

import functools
import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_cache import SharedPoolRedisCache as RedisCache

logger = logging.getLogger(__name__)
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_last_warning = 0.0


def count_up(cache, key: str, *, timeout: float | None) -> int:
    """Add one to the counter at `key` of `cache` (any Django cache), creating it at 0 with
    `timeout` when missing, and return the new count. `add` then `incr`: INCR on Redis is atomic, so
    two processes never get the same number; a counter that expires or is evicted between the two
    calls starts again (the second try), and if even that one is gone, the count is 1."""
    for _ in range(2):
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key)
        except ValueError:  # gone between the two calls
            continue
    cache.set(key, 1, timeout=timeout)
    return 1


def _warn(operation: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:  # one line per ten seconds, not one per request
        _last_warning = now
        logger.warning("cache unavailable (%s: %s); degrading to no cache", operation, exc)


def _degrade(fallback):
    """Run the operation; while Redis is unreachable return `fallback(*args, **kwargs)` instead."""

    def decorator(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except UNAVAILABLE as exc:
                _warn(method.__name__, exc)
                return fallback(*args, **kwargs)

        return wrapper

    return decorator


def _missing_key(*args, **kwargs):
    # What `incr`/`decr` raise for a missing key: callers already handle it (start a new window).
    raise ValueError("cache unavailable")


class ResilientRedisCache(RedisCache):
    """The shared-pool Redis cache (redis_cache.py), each operation degrading as above."""

    get = _degrade(lambda key, default=None, version=None: default)(RedisCache.get)
    get_many = _degrade(lambda keys, version=None: {})(RedisCache.get_many)
    has_key = _degrade(lambda key, version=None: False)(RedisCache.has_key)
    set = _degrade(lambda *args, **kwargs: None)(RedisCache.set)
    set_many = _degrade(lambda data, *args, **kwargs: list(data))(RedisCache.set_many)
    add = _degrade(lambda *args, **kwargs: False)(RedisCache.add)
    touch = _degrade(lambda *args, **kwargs: False)(RedisCache.touch)
    delete = _degrade(lambda *args, **kwargs: False)(RedisCache.delete)
    delete_many = _degrade(lambda *args, **kwargs: None)(RedisCache.delete_many)
    incr = _degrade(_missing_key)(RedisCache.incr)
    clear = _degrade(lambda *args, **kwargs: False)(RedisCache.clear)
