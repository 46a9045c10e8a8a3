"""The live push's state in the `live` cache (settings: CACHES["live"], apart from the caches that
churn): which attendees have a widget open (`watch_start`/`watch_stop`, per attendee and per
event), read by the receivers to push only to someone watching, and the list last sent to each.
"""

from __future__ import annotations

import logging

from django.core.cache import caches
from django.utils.connection import ConnectionProxy

from matchmaking_site.redis_cache import redis_client

logger = logging.getLogger(__name__)


# The push state's own cache (settings: CACHES["live"]), as `django.core.cache.cache` is the default's.
cache = ConnectionProxy(caches, "live")


LAST_KEY = "push:last:{attendee_id}"  # the list last pushed (or first painted) to the attendee


WATCH_KEY = "push:watch:{attendee_id}"  # open widget sockets of the attendee (any process)


WATCHERS_KEY = "push:watchers:{event_id}"  # set of the event's attendees with a widget open


# Longer than any widget stays open; a crashed server's leftover counts expire with it.
STATE_TTL = 24 * 3600


def _incr(key: str) -> int:
    # `add` then `incr`: INCR on Redis is atomic, so two processes never hand out the same number.
    cache.add(key, 0, timeout=STATE_TTL)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between the two calls: start again
        cache.add(key, 0, timeout=STATE_TTL)
        return cache.incr(key)


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
    _incr(WATCH_KEY.format(attendee_id=attendee_id))
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


def watchers_showing(*, event_id: int, external_id: str) -> list[int]:
    """Attendees of the event with a widget open whose current list shows `external_id` (their
    "here now" badge for that person may have changed)."""
    redis_set = _redis_set(event_id)
    if redis_set is not None:
        client, key = redis_set
        ids = [int(pk) for pk in client.smembers(key)]
    else:
        ids = list(_local_watchers(event_id))
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
