"""The live push's state in the `live` cache (settings: CACHES["live"], apart from the caches that
churn): which attendees have a widget open (`watch_start`/`watch_stop`, per attendee and per
event), read by the receivers to push only to someone watching, the list last sent to each
(`remember_shown`), and, the other way round, whose widget shows a person (`watchers_showing`).
"""

from __future__ import annotations

import logging

from django.core.cache import caches
from django.utils.connection import ConnectionProxy

from matchmaking_site.cache import count_up
from matchmaking_site.redis_cache import redis_client

logger = logging.getLogger(__name__)


# The push state's own cache (settings: CACHES["live"]), as `django.core.cache.cache` is the default's.
cache = ConnectionProxy(caches, "live")


LAST_KEY = "push:last:{attendee_id}"  # the list last pushed (or first painted) to the attendee


WATCH_KEY = "push:watch:{attendee_id}"  # open widget sockets of the attendee (any process)


WATCHERS_KEY = "push:watchers:{event_id}"  # set of the event's attendees with a widget open


# On Redis, the set of attendees whose last list shows this person (`remember_shown` keeps it).
SHOWN_KEY = "push:shown:{event_id}:{external_id}"


# Longer than any widget stays open; a crashed server's leftover counts expire with it.
STATE_TTL = 24 * 3600


def _redis_set(event_id: int):
    """(client, key) of the event's watcher set when the cache is Redis, else None. A Redis set,
    not a cached dict: 200 widgets connecting at once must not lose each other's read-modify-write."""
    client = redis_client("live")
    if client is None:
        return None
    return client, cache.make_and_validate_key(WATCHERS_KEY.format(event_id=event_id))


def _local_watchers(event_id: int) -> set[int]:
    # Local-memory cache (the embedded demo): one process, so a plain read-modify-write is safe.
    return set(cache.get(WATCHERS_KEY.format(event_id=event_id)) or ())


def watch_start(*, attendee_id: int, event_id: int) -> None:
    count_up(cache, WATCH_KEY.format(attendee_id=attendee_id), timeout=STATE_TTL)
    redis_set = _redis_set(event_id)
    if redis_set is not None:
        client, key = redis_set
        client.sadd(key, attendee_id)
        client.expire(key, STATE_TTL)
    else:
        cache.set(WATCHERS_KEY.format(event_id=event_id), _local_watchers(event_id) | {attendee_id}, STATE_TTL)


def watch_stop(*, attendee_id: int, event_id: int) -> None:
    key = WATCH_KEY.format(attendee_id=attendee_id)
    try:
        left = cache.decr(key)
    except ValueError:
        left = 0  # expired or evicted: nobody counted as watching anyway
    if left > 0:
        return  # another tab of the same attendee is still open
    cache.set(key, 0, timeout=STATE_TTL)
    redis_set = _redis_set(event_id)
    if redis_set is not None:
        client, set_key = redis_set
        client.srem(set_key, attendee_id)
    else:
        cache.set(WATCHERS_KEY.format(event_id=event_id), _local_watchers(event_id) - {attendee_id}, STATE_TTL)


def remember_shown(*, attendee_id: int, event_id: int, items: list[dict], before: list[dict] | None = None) -> None:
    """Remember `items` as what the attendee's widget shows now: the base of the next diff and, on
    Redis, an entry in the set of each person shown (`SHOWN_KEY`), left for the people no longer
    shown. `before` is the list remembered until now (read when not given). Call it under the
    attendee's push lock, as every caller does, so that two rememberings never interleave.

    WHY an index: a mover's "online" badge concerns every widget that shows them; finding those by
    reading every open widget's last list cost one unpickled list per open widget and per move
    (a third of the server's time at 1,000 widgets in benchmarks/push_latency.py)."""
    if before is None:
        before = cache.get(LAST_KEY.format(attendee_id=attendee_id)) or []
    cache.set(LAST_KEY.format(attendee_id=attendee_id), items, timeout=STATE_TTL)
    client = redis_client("live")
    if client is None:
        return  # one process: `watchers_showing` reads the last lists instead
    old = {item["external_id"] for item in before}
    new = {item["external_id"] for item in items}
    pipe = client.pipeline(transaction=False)
    for external_id in sorted(old - new):
        pipe.srem(_shown_key(event_id, external_id), attendee_id)
    # Everyone shown, not only the newly shown: a paint or a reconnect renews entries that a long
    # unchanged list would otherwise let expire (STATE_TTL), in the same round trip.
    for external_id in sorted(new):
        key = _shown_key(event_id, external_id)
        pipe.sadd(key, attendee_id)
        pipe.expire(key, STATE_TTL)
    pipe.execute()


def _shown_key(event_id: int, external_id: str) -> str:
    # `make_key`, not `make_and_validate_key`: an external id may hold characters that memcached
    # would refuse (Django warns of those); Redis takes any bytes.
    return cache.make_key(SHOWN_KEY.format(event_id=event_id, external_id=external_id))


def watchers_showing(*, event_id: int, external_id: str) -> list[int]:
    """Attendees of the event with a widget open whose current list shows `external_id` (their
    "here now" badge for that person may have changed). On Redis one SINTER of the person's shown
    set and the event's open widgets, however many widgets are open; without Redis (one process)
    a scan of the open widgets' last lists."""
    redis_set = _redis_set(event_id)
    if redis_set is not None:
        client, key = redis_set
        return sorted(int(pk) for pk in client.sinter(_shown_key(event_id, external_id), key))
    ids = sorted(_local_watchers(event_id))
    if not ids:
        return []
    lasts = cache.get_many([LAST_KEY.format(attendee_id=pk) for pk in ids])
    return [
        pk
        for pk in ids
        if any(item["external_id"] == external_id for item in lasts.get(LAST_KEY.format(attendee_id=pk)) or ())
    ]


def watched(attendee_ids) -> list[int]:
    """Which of `attendee_ids` have a widget open now (in any server process)."""
    ids = list(dict.fromkeys(attendee_ids))
    if not ids:
        return []
    counts = cache.get_many([WATCH_KEY.format(attendee_id=pk) for pk in ids])
    return [pk for pk in ids if int(counts.get(WATCH_KEY.format(attendee_id=pk)) or 0) > 0]
