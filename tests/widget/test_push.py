"""The diff, the sequence numbers and the "only when the list changes" rule of the live push."""

import threading
import time

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from events.presence import PRESENCE_CACHE_KEY, presence_join, presence_leave
from recommendations.live import push, runner, state
from recommendations.serving.lists import HERE_NOW_IN_ROOM_TEXT, recommendations_for
from tests.factories import AttendeeFactory, EventFactory, RoomFactory


def item(external_id, text="r", here_now=False):
    return {
        "external_id": external_id,
        "display_name": external_id.upper(),
        "headline": "",
        "company": "",
        "score": 1.0,
        "here_now": here_now,
        "reasons": [{"kind": "k", "text": text, "weight": 1.0}],
    }


def test_list_diff_same_list_is_none():
    assert push.list_diff([item("a"), item("b")], [item("a"), item("b")]) is None


def test_list_diff_score_only_change_is_none():
    changed = item("a")
    changed["score"] = 7.5
    assert push.list_diff([item("a")], [changed]) is None


def test_list_diff_added_removed_moved_changed():
    old = [item("a"), item("b"), item("c")]
    new = [item("c"), item("a", text="new reason"), item("d")]
    assert push.list_diff(old, new) == {
        "ids": ["c", "a", "d"],
        "added": [{"index": 2, "item": item("d")}],
        "removed": ["b"],
        "moved": [{"external_id": "c", "from": 2, "to": 0}, {"external_id": "a", "from": 0, "to": 1}],
        "changed": [item("a", text="new reason")],
    }


@pytest.fixture
def hall(transactional_db):
    event = EventFactory(slug="summit")
    room = RoomFactory(event=event, external_id="hall", name="Main hall")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada")
    # Bob's activity may not be used (training consent off), so only his presence can put him in Ada's
    # list: the filler of short lists (the most active, then everyone) ranks people by activity.
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob", consent_training=False)
    return event, room, ada, bob


def test_presence_join_publishes_snapshot_after_commit(hall):
    event, room, ada, _ = hall
    with transaction.atomic():
        presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
        assert cache.get(PRESENCE_CACHE_KEY.format(event_id=event.pk)) is None
    assert cache.get(PRESENCE_CACHE_KEY.format(event_id=event.pk)) == {ada.pk: room.pk}


def test_same_room_stranger_joins_the_list_with_the_room_as_reason(hall):
    event, room, ada, bob = hall
    assert recommendations_for(attendee=ada).items == []
    presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    [only] = recommendations_for(attendee=ada).items
    assert (only.external_id, only.here_now, only.reasons[0]["text"]) == (
        "bob",
        True,
        HERE_NOW_IN_ROOM_TEXT.format(room="Main hall"),
    )
    presence_leave(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    assert recommendations_for(attendee=ada).items == []


def test_run_soon_hands_the_work_to_a_thread_outside_a_worker(settings):
    settings.LIVE_PUSH_THREADS = 1
    ran = []
    runner.run_soon(lambda: ran.append(threading.current_thread().name))
    runner.executor().submit(lambda: None).result(timeout=5)  # one thread: queued behind the push
    assert ran and ran[0].startswith("live-push")


def test_run_soon_runs_inline_inside_a_worker_task(settings):
    from celery import shared_task

    settings.LIVE_PUSH_THREADS = 1
    ran = []

    @shared_task(name="tests.run_soon_probe")
    def probe():
        runner.run_soon(lambda: ran.append(threading.current_thread().name))

    probe.apply()  # eager (the embedded default): the web process's own run keeps the thread
    runner.executor().submit(lambda: None).result(timeout=5)
    probe()  # called the way a worker calls it: a task context that is not eager
    assert ran[0].startswith("live-push")
    assert ran[1] == threading.current_thread().name


def test_push_lock_serialises_pushers_of_one_attendee_across_threads():
    """Two pushers of the same attendee (a web process and a worker, here two threads on the same
    Redis) never interleave: the second waits until the first has diffed, numbered and sent."""
    order: list[str] = []
    holding = threading.Event()

    def first():
        with push.attendee_push_lock(4242):
            holding.set()
            time.sleep(0.2)
            order.append("first done")

    def second():
        holding.wait(5)
        with push.attendee_push_lock(4242):
            order.append("second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order == ["first done", "second"]
    with push.attendee_push_lock(4243):  # another attendee's lock is independent and free
        assert state.cache.get(push.LOCK_KEY.format(attendee_id=4242)) is None


def test_push_state_and_numbers_survive_the_embedded_cache_culling(hall, settings):
    """The embedded default's local-memory cache holds 300 entries and culls the least recently
    used when full; a busy event fills it (serving caches, model lists). An open widget's state
    and its numbers must survive that: a culled counter restarted at 1, and the widget, holding a
    higher number, ignored every later message (seen in `make demo`)."""
    from django.conf import settings as django_settings
    from django.core.cache import caches

    settings.CACHES = django_settings.EMBEDDED_CACHES
    event, room, ada, bob = hall
    state.watch_start(attendee_id=ada.pk, event_id=event.pk)
    push.widget_state_reset(attendee=ada)
    presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    before = push.current_seq(attendee_id=ada.pk)
    assert before >= 1  # Bob walking in changed Ada's list: pushed and numbered

    for i in range(1000):  # a busy event's serving caches go through the default cache
        caches["default"].set(f"churn:{i}", i)
    presence_leave(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())

    assert state.watched([ada.pk]) == [ada.pk]
    assert push.current_seq(attendee_id=ada.pk) == before + 1


def test_sequence_numbers_never_restart_when_every_cache_is_emptied(hall):
    """Numbers live in the database: even a cache emptied whole (a Redis restart) does not send
    them back to 1. The widget's socket state goes with the cache, and its reconnect registers it
    again: the hello then carries the number the widget already holds, and pushes go on from it."""
    from django.core.cache import caches

    event, room, ada, bob = hall
    state.watch_start(attendee_id=ada.pk, event_id=event.pk)
    presence_join(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    before = push.current_seq(attendee_id=ada.pk)
    assert before >= 1
    for alias in caches:
        caches[alias].clear()
    state.watch_start(attendee_id=ada.pk, event_id=event.pk)  # the reconnect, as the consumer does it
    hello_seq, items = push.widget_state_reset(attendee=ada)
    assert [i["external_id"] for i in items] == ["bob"]  # presence rebuilt from the open visits
    assert hello_seq == before
    presence_leave(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    assert push.current_seq(attendee_id=ada.pk) == before + 1


def test_shown_counts_each_person_a_widget_newly_displays_once(hall):
    """The first paint records its list; the hello right after, the same list, records nothing
    more; a push records only the people it adds."""
    from recommendations.models import FunnelEvent
    from recommendations.serving.funnel import funnel_flush_shown

    event, room, ada, bob = hall
    AttendeeFactory(event=event, external_id="carol", display_name="Carol")
    state.watch_start(attendee_id=ada.pk, event_id=event.pk)

    def shown_to_ada():
        funnel_flush_shown()
        return sorted(
            FunnelEvent.objects.filter(viewer=ada, stage=FunnelEvent.Stage.SHOWN).values_list(
                "suggested__external_id", flat=True
            )
        )

    _, painted, _ = push.widget_first_paint(attendee=ada)
    assert [i["external_id"] for i in painted] == ["carol"]  # Bob refused training: only presence lists him
    push.widget_state_reset(attendee=ada)
    assert shown_to_ada() == ["carol"]
    presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    assert shown_to_ada() == ["bob", "carol"]


def test_a_rename_reaches_the_lists_and_the_open_widgets_that_show_the_person(hall):
    """Before, a renamed attendee kept the old name in other people's cached lists and open
    widgets until the cache expired (minutes), while other pages showed the new one."""
    event, room, ada, bob = hall
    state.watch_start(attendee_id=ada.pk, event_id=event.pk)
    presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    push.widget_first_paint(attendee=ada)
    before = push.current_seq(attendee_id=ada.pk)
    bob.display_name, bob.headline = "Robert Kahn", "Networks"
    bob.save()
    [card] = recommendations_for(attendee=ada).items
    assert (card.display_name, card.headline) == ("Robert Kahn", "Networks")
    assert push.current_seq(attendee_id=ada.pk) == before + 1  # one push, with the changed card
    assert [i["display_name"] for i in cache.get(state.LAST_KEY.format(attendee_id=ada.pk))] == ["Robert Kahn"]
    bob.save()  # nothing shown changed: no push
    assert push.current_seq(attendee_id=ada.pk) == before + 1


def test_the_coalescer_runs_once_per_window_with_every_id_gathered(settings):
    settings.LIVE_PUSH_THREADS = 2
    calls, threads, done = [], [], threading.Event()

    def record(*, ids):
        calls.append(ids)
        threads.append(threading.current_thread().name)
        done.set()

    gather = runner.Coalescer(record, delay=0.2)
    for ids in ({1, 2}, {2, 3}, set(), {4}):
        gather.add(ids)
    assert done.wait(5)
    time.sleep(0.3)  # nothing else comes
    assert calls == [[1, 2, 3, 4]]
    # on the one thread of work that may wait, not on the pool of pushes that may not
    assert threads[0].startswith("live-push-later") and runner.executor("later")._max_workers == 1


def test_the_coalescer_runs_inline_when_pushes_are_inline(settings):
    settings.LIVE_PUSH_THREADS = 0
    calls = []
    runner.Coalescer(lambda *, ids: calls.append(ids), delay=60).add({3, 1})
    assert calls == [[1, 3]]


@pytest.mark.parametrize("live_cache", ["redis", "embedded"])
def test_watchers_showing_follows_what_each_open_widget_shows(hall, settings, live_cache):
    """Who hears of a person's badge change: the open widgets whose last list shows them, no
    one whose list has dropped them since, and no closed widget. On Redis from the index that
    remembering a list keeps; embedded, from the last lists themselves."""
    from django.core.cache import caches

    if live_cache == "embedded":
        settings.CACHES = settings.CACHES | {"live": settings.EMBEDDED_CACHES["live"]}
    caches["live"].clear()
    assert (state.redis_client("live") is not None) == (live_cache == "redis" and bool(settings.REDIS_URL))
    event, room, ada, bob = hall
    carol = AttendeeFactory(event=event, external_id="carol", display_name="Carol", consent_training=False)
    for viewer in (ada, carol):
        state.watch_start(attendee_id=viewer.pk, event_id=event.pk)
    presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=carol.pk, room_id=room.pk, at=timezone.now())
    assert state.watchers_showing(event_id=event.pk, external_id="bob") == [ada.pk, carol.pk]
    presence_leave(event=event, attendee_id=carol.pk, room_id=room.pk, at=timezone.now())
    # Carol's list no longer shows Bob (he is only in it while they share the room).
    assert state.watchers_showing(event_id=event.pk, external_id="bob") == [ada.pk]
    state.watch_stop(attendee_id=ada.pk, event_id=event.pk)
    assert state.watchers_showing(event_id=event.pk, external_id="bob") == []


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="the index exists on Redis only")
def test_a_reconnect_renews_the_index_of_an_unchanged_list(hall):
    """An entry of the index that expired (a list unchanged for a day) comes back with the widget's
    next paint or reconnect, even though the list it remembers is the same."""
    event, room, ada, bob = hall
    state.watch_start(attendee_id=ada.pk, event_id=event.pk)
    presence_join(event=event, attendee_id=ada.pk, room_id=room.pk, at=timezone.now())
    presence_join(event=event, attendee_id=bob.pk, room_id=room.pk, at=timezone.now())
    assert state.watchers_showing(event_id=event.pk, external_id="bob") == [ada.pk]
    state.redis_client("live").delete(state._shown_key(event.pk, "bob"))  # as if expired
    assert state.watchers_showing(event_id=event.pk, external_id="bob") == []
    push.widget_state_reset(attendee=ada)  # the same list as before
    assert state.watchers_showing(event_id=event.pk, external_id="bob") == [ada.pk]
