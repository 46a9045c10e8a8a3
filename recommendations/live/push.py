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

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict

from asgiref.sync import async_to_sync
from celery import current_task
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import caches
from django.db import close_old_connections, connections, transaction
from django.utils.connection import ConnectionProxy

from events import groups
from events.models import Attendee
from matchmaking_site.redis_cache import redis_client
from recommendations.live.sequences import attendee_channel, sequence_current, sequence_next
from recommendations.serving.cache import attendee_cache_invalidate
from recommendations.serving.funnel import funnel_record_shown
from recommendations.serving.lists import Recommendations, recommendations_for

logger = logging.getLogger(__name__)

# What the widget shows: a short list. The REST re-fetch after a gap asks for the same number.
WIDGET_SIZE = 6

# The push state's own cache (settings: CACHES["live"]), as `django.core.cache.cache` is the default's.
cache = ConnectionProxy(caches, "live")

LAST_KEY = "push:last:{attendee_id}"  # the list last pushed (or first painted) to the attendee
LOCK_KEY = "push:lock:{attendee_id}"  # held while one process diffs and sends for the attendee
LOCK_TTL = 5  # seconds; frees the lock of a process that died holding it
LOCK_WAIT = 2.0  # seconds a push waits for another one of the same attendee before going ahead
WATCH_KEY = "push:watch:{attendee_id}"  # open widget sockets of the attendee (any process)
WATCHERS_KEY = "push:watchers:{event_id}"  # set of the event's attendees with a widget open
# Longer than any widget stays open; a crashed server's leftover counts expire with it.
STATE_TTL = 24 * 3600


# --- State kept in the cache ------------------------------------------------------------------------


def _incr(key: str) -> int:
    # `add` then `incr`: INCR on Redis is atomic, so two processes never hand out the same number.
    cache.add(key, 0, timeout=STATE_TTL)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between the two calls: start again
        cache.add(key, 0, timeout=STATE_TTL)
        return cache.incr(key)


def current_seq(*, attendee_id: int) -> int:
    return sequence_current(attendee_channel(attendee_id))


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


# --- Lists and diffs --------------------------------------------------------------------------------


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


def remember_list(*, attendee_id: int, items: list[dict]) -> None:
    cache.set(LAST_KEY.format(attendee_id=attendee_id), items, timeout=STATE_TTL)


def widget_first_paint(*, attendee: Attendee) -> tuple[int, list[dict], str]:
    """The list an attendee page renders inside its widget: (sequence number, items, the empty
    reason). Remembered as what this attendee's screen shows, and recorded as "shown"."""
    with attendee_push_lock(attendee.pk):
        result = widget_list(attendee=attendee)
        items = [suggestion_item(s) for s in result.items]
        remember_list(attendee_id=attendee.pk, items=items)
        funnel_record_shown(viewer=attendee, result=result)
        return current_seq(attendee_id=attendee.pk), items, result.empty_reason


def widget_state_reset(*, attendee: Attendee) -> tuple[int, list[dict]]:
    """For a widget that (re)connects: remember its current list as the base of the next diffs and
    return (current sequence number, list). The client re-fetches over REST when the number is not
    the one it holds. The people the hello adds to what was last painted or pushed count as
    "shown" (the widget renders the hello's list)."""
    with attendee_push_lock(attendee.pk):
        result = widget_list(attendee=attendee)
        items = [suggestion_item(s) for s in result.items]
        before = {item["external_id"] for item in cache.get(LAST_KEY.format(attendee_id=attendee.pk)) or ()}
        remember_list(attendee_id=attendee.pk, items=items)
        added = {s.attendee_id for s in result.items if s.external_id not in before}
        funnel_record_shown(viewer=attendee, result=result, only=added)
        return current_seq(attendee_id=attendee.pk), items


# --- Pushing ----------------------------------------------------------------------------------------


def _group_send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, message)


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
            remember_list(attendee_id=attendee.pk, items=new)
            seq = sequence_next(attendee_channel(attendee.pk))
            _group_send(
                groups.attendee_group(attendee.pk),
                {"type": groups.SUGGESTIONS_CHANGED, "seq": seq, "event": attendee.event.slug, **diff},
            )
            added = {a["item"]["external_id"] for a in diff["added"]}
            funnel_record_shown(
                viewer=attendee, result=result, only={s.attendee_id for s in result.items if s.external_id in added}
            )
        pushed[attendee.pk] = seq
    return pushed


_executor: ThreadPoolExecutor | None = None


def _in_thread(fn, kwargs: dict) -> None:
    close_old_connections()
    try:
        fn(**kwargs)
    except Exception:
        logger.exception("live push %s failed", getattr(fn, "__name__", fn))
    finally:
        # Connections are per thread: a pool thread must not keep one open between jobs.
        connections.close_all()


def _in_celery_worker() -> bool:
    """True while a Celery worker (not an eager, inline call) executes a task in this thread."""
    # `current_task` is a proxy, never None itself: it is falsy when no task runs in this thread.
    return bool(current_task) and not current_task.request.is_eager


def run_soon(fn, **kwargs) -> None:
    """Run `fn(**kwargs)` off the request thread when `LIVE_PUSH_THREADS` > 0 (the server: ASGI runs
    sync views one at a time on one thread, so a push computed there would queue every other
    request behind it), inline otherwise (tests, commands) and inside a Celery worker's task (no
    request waits there, and the task should finish with its work, not hand it to a thread).
    Never raises: the rows are committed."""
    global _executor
    threads = getattr(settings, "LIVE_PUSH_THREADS", 0)
    if threads <= 0 or _in_celery_worker():
        try:
            fn(**kwargs)
        except Exception:
            logger.exception("live push %s failed", getattr(fn, "__name__", fn))
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="live-push")
    _executor.submit(_in_thread, fn, kwargs)


def suggestions_push_on_commit(*, attendee_ids, invalidate: bool = False) -> None:
    ids = list(attendee_ids)
    transaction.on_commit(lambda: run_soon(suggestions_push, attendee_ids=ids, invalidate=invalidate))
