"""Where a push runs: on a small thread pool off the request thread in a server, inline in tests,
commands and Celery tasks (`run_soon`).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import current_task
from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


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


class Coalescer:
    """Gathers ids from many calls and runs `fn(ids=...)` once per `delay` seconds with all of them,
    through `run_later` (the timer only hands the batch over: pushes sent from the short-lived timer
    threads themselves lost messages, 43 sequence gaps in one push_latency.py run, none from the
    pool). Inline when LIVE_PUSH_THREADS is 0 (tests and commands want the work done when the
    call returns). WHY: one badge change can concern every open widget that lists the person;
    under churn the same widgets were recomputed for each mover, which starved the pushes that
    matter most (see `presence_push`)."""

    def __init__(self, fn, delay: float) -> None:
        self.fn, self.delay = fn, delay
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, ids) -> None:
        ids = set(ids)
        if not ids:
            return
        if getattr(settings, "LIVE_PUSH_THREADS", 0) <= 0 or _in_celery_worker():
            try:
                self.fn(ids=sorted(ids))
            except Exception:
                logger.exception("live push %s failed", getattr(self.fn, "__name__", self.fn))
            return
        with self._lock:
            self._ids |= ids
            if self._timer is None:
                self._timer = threading.Timer(self.delay, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            ids, self._ids, self._timer = self._ids, set(), None
        run_later(self.fn, ids=sorted(ids))


def run_soon(fn, **kwargs) -> None:
    """Run `fn(**kwargs)` off the request thread when `LIVE_PUSH_THREADS` > 0 (the server: a push
    computed there would hold the response of the POST that caused it, for every widget it
    concerns), inline otherwise (tests, commands) and inside a Celery worker's task (no
    request waits there, and the task should finish with its work, not hand it to a thread).
    Never raises: the rows are committed."""
    _submit("soon", fn, kwargs)


def run_later(fn, **kwargs) -> None:
    """`run_soon` for work that may wait (a `Coalescer`'s batch: badges elsewhere): on one thread of
    its own, so that however much of it piles up, at most one such job competes with the pushes
    that must go out at once (the mover's room) for the interpreter. Inline where `run_soon` is."""
    _submit("later", fn, kwargs)


_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def _submit(kind: str, fn, kwargs: dict) -> None:
    threads = getattr(settings, "LIVE_PUSH_THREADS", 0)
    if threads <= 0 or _in_celery_worker():
        try:
            fn(**kwargs)
        except Exception:
            logger.exception("live push %s failed", getattr(fn, "__name__", fn))
        return
    executor = _executors.get(kind)
    if executor is None:
        with _executors_lock:
            executor = _executors.get(kind)
            if executor is None:
                prefix = "live-push" if kind == "soon" else "live-push-later"
                executor = ThreadPoolExecutor(max_workers=threads if kind == "soon" else 1, thread_name_prefix=prefix)
                _executors[kind] = executor
    executor.submit(_in_thread, fn, kwargs)


def executor(kind: str = "soon") -> ThreadPoolExecutor | None:
    """The thread pool of `run_soon` ("soon") or `run_later` ("later"), None before its first use."""
    return _executors.get(kind)
