"""Django's Redis cache, with one connection pool per process instead of one per request.

Django keeps a cache backend object per context, and under ASGI every request runs in a context
(and a thread) of its own, so the stock `RedisCache` built a new client, a new connection pool
and therefore a new TCP connection to Redis on every request (measured: exactly one connection
per request to daphne; see benchmarks/serve.py). redis-py's connection pool is thread-safe, so
one client per (servers, options) is shared by the whole process here.
"""

import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[str, object] = {}
_lock = threading.Lock()


class SharedPoolRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = repr((self._servers, sorted(self._options.items())))
        client = _clients.get(key)
        if client is None:
            with _lock:
                client = _clients.get(key)
                if client is None:
                    client = _clients[key] = self._class(self._servers, **self._options)
        return client
