"""Django's Redis cache, with one connection pool and one client per process instead of one per
request and per command.

Two costs of the stock `RedisCache` on the serving path, both measured by benchmarks/serve.py:
- Django keeps a cache backend object per context, and under ASGI every request runs in a context
  (and a thread) of its own, so each request built a new client, a new connection pool and hence
  a new TCP connection to Redis (exactly one connection per request to daphne).
- `RedisCacheClient.get_client` builds a new `redis.Redis` object for every command, and redis-py's
  constructor (its table of response callbacks) cost about as much CPU as the command itself.
redis-py's pool and client are thread-safe, so both are shared here, per (servers, options).
"""

import threading

import redis.sentinel
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

from .redis_urls import parse_sentinel

_clients: dict[str, RedisCacheClient] = {}
_lock = threading.Lock()


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._redis: dict[int, object] = {}
        self._scripts: dict[int, object] = {}

    def _get_connection_pool(self, write):
        """redis-py's pool for the server, or, for a ``sentinel://`` URL (`redis_urls`), the pool
        of the master the sentinels name (it follows a failover)."""
        index = self._get_connection_pool_index(write)
        if index not in self._pools:
            sentinel = parse_sentinel(self._servers[index])
            if sentinel is None:
                return super()._get_connection_pool(write)
            options = dict(self._pool_options)
            timeouts = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout") if k in options}
            watchers = redis.sentinel.Sentinel(list(sentinel.hosts), sentinel_kwargs=timeouts)
            self._pools[index] = watchers.master_for(
                sentinel.master, **sentinel.master_kwargs(), **options
            ).connection_pool
        return self._pools[index]

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._redis.get(index)
        if client is None:
            client = self._redis[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client

    # SET with an expiry for each key, in one command. WHY: the stock client sends MSET and then
    # one EXPIRE per key inside MULTI/EXEC, and packing and reading back those commands was most
    # of the cost of the real-time path's write of a large room's lists (one key per list):
    # 600 lists, 6.2 ms stock, 4.3 ms as a script (hiredis). Atomic, like MULTI/EXEC.
    _SET_MANY_EX = "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1]) end"

    # Keys per command. WHY: Redis runs a script (or a MULTI/EXEC) to the end before it serves
    # anyone else, and the client waits for the reply at most its socket timeout (0.5 s). A worker
    # catching up on 5,000 interactions at size M writes ~70,000 keys: in one call, Redis stalled
    # every other client and the call timed out, so the lists were lost (benchmarks/realtime_django.py
    # --catch-up). A chunk of this size takes a few milliseconds.
    SET_MANY_CHUNK = 500

    def set_many(self, data, timeout):
        items = list(data.items())
        for i in range(0, len(items), self.SET_MANY_CHUNK):
            self._set_many(dict(items[i : i + self.SET_MANY_CHUNK]), timeout)

    def _set_many(self, data, timeout):
        if timeout is None or timeout == 0:  # no expiry, or "expire now": the stock behaviour
            super().set_many(data, timeout)
            return
        client = self.get_client(None, write=True)
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(self._SET_MANY_EX)
        script(keys=list(data), args=[timeout, *(self._serializer.dumps(v) for v in data.values())])


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient

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


def redis_client(alias: str = "default"):
    """The redis-py client behind cache `alias` when it is Redis, else None (the embedded default).

    Reaches into `_cache` (Django has no public accessor) for what the cache API cannot say: a
    list's ten-odd counter updates in one pipelined round trip instead of two round trips each
    (on a busy host ~2 ms against ~30 ms per cache miss), the funnel's buffer, and sets that many
    writers add to at once without losing each other's read-modify-write."""
    from django.core.cache import caches

    backend = caches[alias]
    if not isinstance(backend, SharedPoolRedisCache):  # the Redis caches of settings.CACHES are
        return None
    return backend._cache.get_client(None, write=True)
