"""Real processes for the tests that need them: an ASGI server on the test database (for
WebSockets across processes, and for the fault tests), and the system Chromium."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# For tests that push from the test process to a server's sockets: the in-memory channel layer of
# the embedded default cannot reach another process, so they need Redis (`make test` has it).
needs_redis_layer = pytest.mark.skipif(
    not settings.REDIS_URL, reason="pushes from the test process to a server's sockets: only Redis carries that"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous: the server imports numpy, scikit-learn and numba on start, on a shared 2-core machine.
SERVER_START_SECONDS = 120


QUIET_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
)


def wait_database_quiet(*, settle: float = 0.3, timeout: float = 15.0) -> None:
    """Until no other session of the test database has been inside a statement or a transaction
    for `settle` seconds (PostgreSQL; nothing to wait for elsewhere). An out-of-process server
    still finishing a request (a closed page's WebSocket closing its visit) holds row locks that
    the flush at a transactional test's teardown (TRUNCATE) would deadlock with."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(QUIET_SQL)
            busy = cursor.fetchone()[0]
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= settle:
            return
        time.sleep(0.05)
    raise AssertionError(f"the test database stayed busy for {timeout:.0f} s after the test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def current_database_url() -> str:
    """The URL of the database this test runs in (pytest-django's test_<name>, or SQLite's file)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def metric_sample(text: str, name: str, **labels: str) -> float | None:
    """The value of sample `name` with these labels (others may be there too) in a Prometheus
    exposition text, read with prometheus_client's own parser; None when there is none."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def server_env(**overrides: str) -> dict:
    """The environment of a server or worker process on the test database: no persistent
    connections (the test database is dropped at the end), quiet logs, then `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        {"DATABASE_URL": current_database_url(), "CONN_MAX_AGE": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    )
    env.update(overrides)
    return env


def http(
    method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 20
) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answered."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def asgi_server(env: dict, *, log: Path | None = None):
    """daphne on a free port with `env`; yields its base URL once /healthz answers (200, or 503
    while the database is down). Stopped, with its children, on exit."""
    port = free_port()
    out = log.open("a") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "matchmaking_site.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT if log else subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_SECONDS
    try:
        while http("GET", f"{base}/healthz", timeout=2)[0] not in (200, 503):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log else proc.stderr.read().decode()[-2000:]
                raise RuntimeError(f"daphne did not start: {tail}")
            time.sleep(0.5)
        yield base
    finally:
        stop(proc)


@contextmanager
def chromium(extra_args=()):
    """Start it only after the test's rows exist: Playwright's sync API runs an event loop in this
    thread, and Django refuses ORM calls from a thread with a running loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()
