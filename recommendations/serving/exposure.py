"""The exposure cap: no attendee is suggested to everyone.

A few very active or very central attendees would otherwise top most lists (the popularity
problem of every recommender), which burns them out with requests and wastes everyone else's
slots. The cap says: one attendee appears in at most `share` of an event's lists; over-exposed
candidates are *demoted* behind the others, not dropped, so a small event still gets full lists.

Two forms of the same rule:
- `apply_exposure_cap(lists, share, k)`: pure, over a whole table of ranked lists at once (batch,
  offline evaluation: measure the quality cost of the cap by evaluating with and without it).
- `exposure_demote(...)`: online, one list at a time, against per-event counters in the cache.
  A list counts once per viewer: when a viewer's list is recomputed, the previous one's counts are
  taken back, so re-fetching the same list never inflates anyone's exposure.
"""

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from django.core.cache import cache

from matchmaking_site.redis_cache import redis_client

# How many top items of a list count as "shown" for the cap: the widget's default list length.
EXPOSURE_LIST_SIZE = 10

COUNT_KEY = "rec:exp:{event_id}:{attendee_id}"
LAST_KEY = "rec:exp:last:{viewer_id}"
VIEWERS_KEY = "rec:exp:viewers:{event_id}"
COUNTER_TTL = 7 * 24 * 3600
VIEWERS_TTL = 60

_Viewer = TypeVar("_Viewer", bound=Hashable)
_Item = TypeVar("_Item", bound=Hashable)


def exposure_cap_count(*, share: float, n_lists: int) -> int:
    """The most lists one attendee may appear in; at least 1 so that the cap never empties lists."""
    return max(1, math.floor(share * n_lists))


def apply_exposure_cap(
    lists: Mapping[_Viewer, Sequence[_Item]], share: float, k: int = EXPOSURE_LIST_SIZE
) -> dict[_Viewer, list[_Item]]:
    """Cut every ranked list to `k` items so that no item is in more than `share` of the lists.

    Fills rank by rank across all viewers (round robin), so that the scarce slots of a popular
    candidate go to the viewers who rank them highest at each depth, not to whichever viewer comes
    first. When a viewer has no uncapped candidate left, the best capped one fills the slot
    (demoted, not dropped): a list is only ever shorter than `k` if its input was.
    """
    cap = exposure_cap_count(share=share, n_lists=len(lists))
    counts: Counter[_Item] = Counter()
    out: dict[_Viewer, list[_Item]] = {viewer: [] for viewer in lists}
    cursor = dict.fromkeys(lists, 0)
    for _ in range(k):
        for viewer, ranked in lists.items():
            if len(out[viewer]) >= k:
                continue
            chosen = set(out[viewer])
            pick = None
            fallback = None
            for item in ranked[cursor[viewer] :]:
                if item in chosen:
                    continue
                if counts[item] < cap:
                    pick = item
                    break
                # The least exposed capped candidate, so that an over-full table spreads its
                # excess as evenly as it can instead of piling it on the most popular.
                if fallback is None or counts[item] < counts[fallback]:
                    fallback = item
            pick = pick if pick is not None else fallback
            if pick is None:
                continue
            out[viewer].append(pick)
            counts[pick] += 1
            # Skip over the already-taken prefix next time (capped items stay available as fallback).
            while cursor[viewer] < len(ranked) and ranked[cursor[viewer]] in out[viewer]:
                cursor[viewer] += 1
    return out


def _n_viewers(event) -> int:
    """Attendees who receive lists: the number of lists the share is taken of. Cached a minute,
    since it only moves with registrations and consent changes."""
    from events.models import Attendee

    n = Attendee.objects.filter(event=event, consent_receive_recommendations=True).count()
    cache.set(VIEWERS_KEY.format(event_id=event.pk), n, timeout=VIEWERS_TTL)
    return n


def exposure_demote(*, event, viewer_id: int, ranked_ids: list[int], k: int = EXPOSURE_LIST_SIZE) -> list[int]:
    """Reorder one freshly computed list: candidates already in `share` of the event's lists move
    behind the others. Then record this list's top `k` as the viewer's current exposure.

    Three cache round trips: one read (previous list, viewer count, counters), one pipelined
    write of the counter changes, one write of the new list."""
    last_key = LAST_KEY.format(viewer_id=viewer_id)
    viewers_key = VIEWERS_KEY.format(event_id=event.pk)
    count_keys = {pk: COUNT_KEY.format(event_id=event.pk, attendee_id=pk) for pk in ranked_ids}
    stored = cache.get_many([last_key, viewers_key, *count_keys.values()])
    last: list[int] = stored.get(last_key) or []
    last_set = set(last)
    n_viewers = stored.get(viewers_key)
    if n_viewers is None:
        n_viewers = _n_viewers(event)
    cap = exposure_cap_count(share=event.exposure_cap_share, n_lists=n_viewers)

    def others_count(pk: int) -> int:
        # This viewer's own previous list is replaced now, so it does not count against them.
        return stored.get(count_keys[pk], 0) - (1 if pk in last_set else 0)

    # Greedy top-k, as in `apply_exposure_cap`, but for one viewer against everyone else's counts.
    top: list[int] = []
    demoted: list[int] = []
    for pk in ranked_ids:
        if len(top) < k and others_count(pk) < cap:
            top.append(pk)
        else:
            demoted.append(pk)
    fill = k - len(top)
    if fill > 0:
        # Not enough uncapped candidates: the least exposed demoted ones (by rank among equals)
        # fill the list, after the uncapped ones.
        rank = {pk: i for i, pk in enumerate(ranked_ids)}
        filling = set(sorted(demoted, key=lambda pk: (others_count(pk), rank[pk]))[:fill])
        top = top + [pk for pk in demoted if pk in filling]
        demoted = [pk for pk in demoted if pk not in filling]
    ordered = top + demoted

    new_top = ordered[:k]
    new_set = set(new_top)
    deltas = {COUNT_KEY.format(event_id=event.pk, attendee_id=pk): -1 for pk in last_set - new_set}
    deltas.update({COUNT_KEY.format(event_id=event.pk, attendee_id=pk): 1 for pk in new_set - last_set})
    _incr_many(deltas)
    cache.set(last_key, new_top, timeout=COUNTER_TTL)
    return ordered


def _incr_many(deltas: dict[str, int]) -> None:
    if not deltas:
        return
    client = redis_client()
    if client is not None:
        # INCRBY creates a missing counter at 0 first: atomic, and no add-then-incr race.
        pipe = client.pipeline(transaction=False)
        for key, delta in deltas.items():
            raw_key = cache.make_and_validate_key(key)
            pipe.incrby(raw_key, delta)
            pipe.expire(raw_key, COUNTER_TTL)
        pipe.execute()
        return
    for key, delta in deltas.items():
        _incr(key, delta)


def _incr(key: str, delta: int) -> None:
    cache.add(key, 0, timeout=COUNTER_TTL)
    try:
        cache.incr(key, delta)
    except ValueError:  # evicted between add and incr: start again from this delta
        cache.set(key, max(delta, 0), timeout=COUNTER_TTL)
