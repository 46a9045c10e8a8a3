"""The suggestion cache and what invalidates it, pretix style: versions, not deletes.

A cached list is stored with two version stamps: one per event (bumped by a new published model
version, a phase change, or a change that can touch every list, such as an attendee withdrawing
`consent_be_recommended`) and one per attendee (bumped by that attendee's blocks, connections,
not-relevant marks and consent changes). A list is served only while both stamps it was computed
under are still the current ones, so bumping a stamp invalidates every list built under the old
one at once. This needs no key scans and works the same on Redis and on the local-memory cache.
The stamps travel inside the entry, under a key of the attendee alone, rather than in the key
itself: the read path then fetches the stamps, the list (and presence) in one `get_many`, where a
key built from the stamps needed a round trip for them first.

A stamp is a fresh `time.time_ns()`, never an increment: if Redis evicts a stamp, a new random-ish
value cannot collide with a key built from an older one (an increment restarting at 1 could).

Presence ("here now") is written by the ingestion side (`events.presence.PRESENCE_CACHE_KEY`); the
serving path only reads it. See `present_attendee_ids`.
"""

import time
from collections.abc import Sequence
from typing import Any

from django.core.cache import cache
from django.db import transaction

from events.presence import PRESENCE_CACHE_KEY, presence_publish

EVENT_VERSION_KEY = "rec:ev:{event_id}"
ATTENDEE_VERSION_KEY = "rec:at:{attendee_id}"
LIST_KEY = "rec:list:{attendee_id}"

# Version stamps outlive every list TTL by far; a week covers any event's live window.
VERSION_TTL = 7 * 24 * 3600


def _stamp() -> int:
    return time.time_ns()


def _bump(keys: list[str]) -> None:
    stamp = _stamp()
    cache.set_many(dict.fromkeys(keys, stamp), timeout=VERSION_TTL)


def _bump_now_and_on_commit(keys: list[str]) -> None:
    """Bump at once, so that the rest of this transaction (and a test inside one) reads fresh
    lists, and again after commit, so that a concurrent reader who re-cached the pre-commit state
    in between cannot keep serving it."""
    _bump(keys)
    transaction.on_commit(lambda: _bump(keys))


def event_cache_invalidate(*, event_id: int) -> None:
    _bump_now_and_on_commit([EVENT_VERSION_KEY.format(event_id=event_id)])


def attendee_cache_invalidate(*, attendee_ids: list[int]) -> None:
    _bump_now_and_on_commit([ATTENDEE_VERSION_KEY.format(attendee_id=pk) for pk in attendee_ids])


def list_key(*, event_id: int, attendee_id: int) -> str:
    """The key of an attendee's cached list (the entry holds the stamps it is valid under)."""
    return LIST_KEY.format(attendee_id=attendee_id)


def cached_list_get(*, event_id: int, attendee_id: int, also: Sequence[str] = ()) -> tuple[tuple, Any, dict]:
    """(current stamps, cached list or None, values of the `also` keys), in one cache round trip.
    The list is None unless it was stored under the stamps that are current now. A missing stamp
    (first read, or evicted) is created, which costs a second round trip that once."""
    ev_key = EVENT_VERSION_KEY.format(event_id=event_id)
    at_key = ATTENDEE_VERSION_KEY.format(attendee_id=attendee_id)
    key = LIST_KEY.format(attendee_id=attendee_id)
    got = cache.get_many([ev_key, at_key, key, *also])
    missing = {k: _stamp() for k in (ev_key, at_key) if k not in got}
    if missing:
        # `add`, not `set`: two first readers racing must agree on one stamp.
        for k, value in missing.items():
            cache.add(k, value, timeout=VERSION_TTL)
        got.update(cache.get_many(list(missing)))
    stamps = (got[ev_key], got[at_key])
    entry = got.get(key)
    listed = entry[1] if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == stamps else None
    return stamps, listed, got


def stamps_now(*, event_id: int, attendee_id: int) -> tuple | None:
    """The current (event, attendee) stamps, in the form `cached_list_get` returns them; None when
    either is missing (nothing can have been stored under it)."""
    ev_key = EVENT_VERSION_KEY.format(event_id=event_id)
    at_key = ATTENDEE_VERSION_KEY.format(attendee_id=attendee_id)
    got = cache.get_many([ev_key, at_key])
    return (got[ev_key], got[at_key]) if len(got) == 2 else None


def cached_list_set(*, attendee_id: int, stamps: tuple, value, timeout: int) -> None:
    """Store a list computed under `stamps`: pass the stamps read *before* computing it, so that a
    change committed meanwhile (which bumps a stamp) leaves the entry unservable."""
    cache.set(LIST_KEY.format(attendee_id=attendee_id), (stamps, value), timeout=timeout)


def present_attendee_ids(event) -> dict[int, int | None]:
    """Attendees of `event` online now -> the room they are in (None: online, in no room).

    Reads the presence service's cache entry (`PRESENCE_CACHE_KEY`); an empty dict when nobody is
    present. A missing entry (evicted, expired after an hour without a move, a cache restart) is
    rebuilt from the open visits, not read as "nobody here". Iterating the result yields attendee ids."""
    value = cache.get(PRESENCE_CACHE_KEY.format(event_id=event.pk))
    if value is None:
        value = presence_publish(event_id=event.pk)
    return dict(value)
