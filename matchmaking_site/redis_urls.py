"""Where each Redis role lives, and Redis Sentinel for any of them.

Roles (settings.py): the cache (may evict), the live-push state and the channel layer (must not
evict), the Celery broker (must not evict). Each has its own URL, all defaulting to ``REDIS_URL``,
so one Redis serves a small deployment and separate ones (with the eviction policy each needs) a
large one.

A role's URL is ``redis://`` / ``rediss://`` (redis-py's syntax), or, for a Sentinel-managed
Redis, ``sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]``: the sentinels to ask,
the name of the master they monitor, the database number. The password is the master's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

BAD_SENTINEL_URL = (
    "{name}: a Sentinel URL is sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB], got {url!r}"
)


@dataclass(frozen=True)
class Sentinel:
    hosts: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    password: str | None = None

    def master_kwargs(self) -> dict:
        return {"db": self.db, **({"password": self.password} if self.password else {})}


def parse_sentinel(url: str, *, name: str = "URL") -> Sentinel | None:
    """The Sentinel a ``sentinel://`` URL names; None for any other URL. Raises ValueError with
    one line naming the setting when the URL is malformed."""
    if not url.startswith("sentinel://"):
        return None
    rest = url[len("sentinel://") :]
    password = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[1] if ":" in auth else auth) or None
    hosts_part, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    try:
        hosts = []
        for item in hosts_part.split(","):
            host, _, port = item.strip().rpartition(":")
            hosts.append((host or item.strip(), int(port) if host else 26379))
        if not hosts or not parts or len(parts) > 2:
            raise ValueError
        db = int(parts[1]) if len(parts) == 2 else 0
    except ValueError:
        raise ValueError(BAD_SENTINEL_URL.format(name=name, url=url)) from None
    return Sentinel(tuple(hosts), unquote(parts[0]), db, password)


def channel_layer_host(url: str, *, name: str) -> dict:
    """A channels_redis ``hosts`` entry for ``url``. No client read timeout: a consumer's receive
    is a blocking pop that Redis answers after 5 s of quiet, and redis-py 8's default 5 s socket
    timeout fired first, ending every quiet WebSocket with 1011 (django/channels_redis#422)."""
    sentinel = parse_sentinel(url, name=name)
    if sentinel is None:
        return {"address": url, "socket_timeout": None}
    return {
        "sentinels": list(sentinel.hosts),
        "master_name": sentinel.master,
        "socket_timeout": None,
        **sentinel.master_kwargs(),
    }


def broker_settings(url: str, *, name: str) -> tuple[str, dict]:
    """(Celery broker URL, extra transport options) for ``url``: kombu's own Sentinel syntax (one
    ``sentinel://host:port`` per sentinel, ``;``-separated, the master's name as a transport
    option, the database as the first URL's path)."""
    sentinel = parse_sentinel(url, name=name)
    if sentinel is None:
        return url, {}
    auth = f":{sentinel.password}@" if sentinel.password else ""
    first, *others = sentinel.hosts
    urls = [f"sentinel://{auth}{first[0]}:{first[1]}/{sentinel.db}"]
    urls += [f"sentinel://{auth}{host}:{port}" for host, port in others]
    return ";".join(urls), {"master_name": sentinel.master}
