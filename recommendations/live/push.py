"""The live push: an attendee's open widget hears about it when their top list changes.

    something committed (interactions, presence, a block, a connection, consents)
      -> affected attendees (only those with a widget open)
      -> recompute the widget's list with `recommendations_for` (the one serving path)
      -> compare with the list last pushed to them (kept in the cache)
      -> if different: next sequence number, a diff, `group_send` to the attendee's group.

Always after commit: the receivers schedule pushes with `transaction.on_commit`, so a rolled-back
transaction pushes nothing. A push is a hint; REST is the truth: every message carries the
attendee's next sequence number (`recommendations.live.sequences`, a table: an evicted counter would
restart and send numbers backwards), and a client that sees a gap, a number going backwards, or
reconnects, re-fetches the list over REST. The rest of the push state (open widgets, the list
last sent, locks) lives in the `live` cache, apart from the caches that churn.

Message `suggestions.changed` (to `groups.attendee_group(attendee_id)`), forwarded as is to the
browser by `SuggestionsConsumer`:

    {"type": "suggestions.changed", "seq": 12, "event": "<slug>",
     "ids": [<external ids of the new list, in order>],
     "added": [{"index": 0, "item": <suggestion as in the REST API>}, ...],
     "removed": [<external id>, ...],
     "moved": [{"external_id": "a-7", "from": 2, "to": 0}, ...],
     "changed": [<Suggestion whose reasons or "here now" changed>, ...]}

The organizers' pushes (`engagement.update`) belong to `dashboard.services.dashboard_push`.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import asdict

from django.db import transaction

from events import groups
from events.models import Attendee
from matchmaking_site.layer import group_send
from recommendations.live.runner import run_soon
from recommendations.live.sequences import attendee_channel, sequence_current, sequence_next
from recommendations.live.state import LAST_KEY, cache, remember_shown, watched
from recommendations.serving.cache import attendee_cache_invalidate
from recommendations.serving.funnel import funnel_record_shown
from recommendations.serving.lists import Recommendations, recommendations_for

logger = logging.getLogger(__name__)


# What the widget shows: a short list. The REST re-fetch after a gap asks for the same number.
WIDGET_SIZE = 6


LOCK_KEY = "push:lock:{attendee_id}"  # held while one process diffs and sends for the attendee


LOCK_TTL = 5  # seconds; frees the lock of a process that died holding it


LOCK_WAIT = 2.0  # seconds a push waits for another one of the same attendee before going ahead


def current_seq(*, attendee_id: int) -> int:
    return sequence_current(attendee_channel(attendee_id))


def widget_list(*, attendee: Attendee) -> Recommendations:
    """The widget's list: the serving path, at the widget's size."""
    return recommendations_for(attendee=attendee, num_results=WIDGET_SIZE)


def suggestion_item(suggestion) -> dict:
    """A suggestion as the REST API shows it (keyed by external id: internal ids stay inside)."""
    data = asdict(suggestion)
    del data["attendee_id"]
    data["score"] = round(float(data["score"]), 4)
    return data


def _visible(item: dict) -> tuple:
    """What the attendee sees of an item: a change in anything else (a score) is no change."""
    return (
        item["display_name"],
        item["headline"],
        item["company"],
        item["here_now"],
        tuple(r["text"] for r in item["reasons"]),
    )


def list_diff(old: list[dict], new: list[dict]) -> dict | None:
    """The diff that turns `old` into `new` (lists of items), or None when they look the same."""
    old_ids = [item["external_id"] for item in old]
    new_ids = [item["external_id"] for item in new]
    old_by_id = {item["external_id"]: item for item in old}
    removed = [pk for pk in old_ids if pk not in set(new_ids)]
    added = [{"index": i, "item": item} for i, item in enumerate(new) if item["external_id"] not in old_by_id]
    kept_old = [pk for pk in old_ids if pk in set(new_ids)]
    kept_new = [pk for pk in new_ids if pk in old_by_id]
    moved = [
        {"external_id": pk, "from": old_ids.index(pk), "to": new_ids.index(pk)}
        for pk in kept_new
        if kept_old.index(pk) != kept_new.index(pk)
    ]
    changed = [
        item
        for item in new
        if item["external_id"] in old_by_id and _visible(item) != _visible(old_by_id[item["external_id"]])
    ]
    if not (removed or added or moved or changed):
        return None
    return {"ids": new_ids, "added": added, "removed": removed, "moved": moved, "changed": changed}


@contextmanager
def attendee_push_lock(attendee_id: int):
    """One pusher at a time per attendee, across threads and processes (web and Celery workers
    both push): read the last list, diff, remember, number and send as one step. WHY: two pushers
    diffing against the same last list would each send a diff from it, numbered n and n + 1 —
    contiguous numbers, so the widget would apply the second on top of the first and show a wrong
    list; or they would arrive out of order and force a re-fetch. `cache.add` is an atomic SET NX
    on Redis (and on the embedded local-memory cache)."""
    key = LOCK_KEY.format(attendee_id=attendee_id)
    deadline = time.monotonic() + LOCK_WAIT
    while not cache.add(key, 1, timeout=LOCK_TTL):
        if time.monotonic() > deadline:
            logger.warning("push lock of attendee %s still held after %.1f s; pushing anyway", attendee_id, LOCK_WAIT)
            break
        time.sleep(0.002)
    try:
        yield
    finally:
        cache.delete(key)


def widget_first_paint(*, attendee: Attendee) -> tuple[int, list[dict], str]:
    """The list an attendee page renders inside its widget: (sequence number, items, the empty
    code, see `Recommendations.empty_code`). Remembered as what this attendee's screen shows, and
    recorded as "shown"."""
    with attendee_push_lock(attendee.pk):
        result = widget_list(attendee=attendee)
        items = [suggestion_item(s) for s in result.items]
        remember_shown(attendee_id=attendee.pk, event_id=attendee.event_id, items=items)
        funnel_record_shown(viewer=attendee, result=result)
        return current_seq(attendee_id=attendee.pk), items, result.empty_code


def widget_state_reset(*, attendee: Attendee) -> tuple[int, list[dict]]:
    """For a widget that (re)connects: remember its current list as the base of the next diffs and
    return (current sequence number, list). The client re-fetches over REST when the number is not
    the one it holds. The people the hello adds to what was last painted or pushed count as
    "shown" (the widget renders the hello's list)."""
    with attendee_push_lock(attendee.pk):
        result = widget_list(attendee=attendee)
        items = [suggestion_item(s) for s in result.items]
        last = cache.get(LAST_KEY.format(attendee_id=attendee.pk)) or []
        remember_shown(attendee_id=attendee.pk, event_id=attendee.event_id, items=items, before=last)
        before = {item["external_id"] for item in last}
        added = {s.attendee_id for s in result.items if s.external_id not in before}
        funnel_record_shown(viewer=attendee, result=result, only=added)
        return current_seq(attendee_id=attendee.pk), items


def suggestions_push(*, attendee_ids, invalidate: bool = False) -> dict[int, int]:
    """Recompute the lists of those of `attendee_ids` who have a widget open, and push a diff to
    each whose list changed; return {attendee_id: sequence number pushed}. Call after commit.
    `invalidate` first drops their cached lists (their model neighbours were just recomputed)."""
    ids = watched(attendee_ids)
    if not ids:
        return {}
    if invalidate:
        attendee_cache_invalidate(attendee_ids=ids)
    pushed: dict[int, int] = {}
    for attendee in Attendee.objects.select_related("event").filter(pk__in=ids):
        with attendee_push_lock(attendee.pk):
            result = widget_list(attendee=attendee)
            new = [suggestion_item(s) for s in result.items]
            old = cache.get(LAST_KEY.format(attendee_id=attendee.pk)) or []
            diff = list_diff(old, new)
            if diff is None:
                continue
            remember_shown(attendee_id=attendee.pk, event_id=attendee.event_id, items=new, before=old)
            seq = sequence_next(attendee_channel(attendee.pk))
            group_send(
                groups.attendee_group(attendee.pk),
                {"type": groups.SUGGESTIONS_CHANGED, "seq": seq, "event": attendee.event.slug, **diff},
            )
            added = {a["item"]["external_id"] for a in diff["added"]}
            funnel_record_shown(
                viewer=attendee, result=result, only={s.attendee_id for s in result.items if s.external_id in added}
            )
        pushed[attendee.pk] = seq
    return pushed


def suggestions_push_on_commit(*, attendee_ids, invalidate: bool = False) -> None:
    ids = list(attendee_ids)
    transaction.on_commit(lambda: run_soon(suggestions_push, attendee_ids=ids, invalidate=invalidate))
