"""`make demo` end to end, as the README tells a newcomer to run it: the embedded default (SQLite,
in-memory cache and channel layer, no broker), nothing but the Makefile. It must print an
attendee's sign-in link, serve the event, and keep the demo live: the traffic simulator walks
attendees between rooms, so the event's interactions keep growing while the page is open."""

import os
import re
import sqlite3
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.live import ROOT, free_port, http, stop

pytestmark = pytest.mark.slow
LINK = re.compile(r"Attendee:\s+.*?(http://\S+)")


def _wait_for(demo: subprocess.Popen, condition, seconds: float, what: str, output: list[str]):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if demo.poll() is not None:  # make gave up: say so now, with its output
            raise AssertionError(f"make demo exited {demo.returncode} ({what}):\n" + "".join(output[-40:]))
        time.sleep(0.5)
    raise AssertionError(f"make demo: {what} within {seconds:.0f} s; last output:\n" + "".join(output[-40:]))


def _interactions(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from events_interaction").fetchone()[0]


def test_make_demo_signs_an_attendee_in_and_keeps_the_event_live(tmp_path):
    port = free_port()
    db = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=f"sqlite:///{db}", MODEL_ARTIFACT_ROOT=str(tmp_path / "models"))
    demo = subprocess.Popen(
        ["make", "--no-print-directory", "demo", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make, daphne and the simulator in one group, stopped together
    )
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(demo.stdout), daemon=True).start()
    try:
        link = _wait_for(
            demo,
            lambda: next((m.group(1) for line in output if (m := LINK.search(line))), None),
            300,
            "no attendee sign-in link printed",
            output,
        )
        base = f"http://127.0.0.1:{port}"

        _wait_for(demo, lambda: http("GET", f"{base}/healthz", timeout=2)[0] == 200, 60, "no /healthz", output)
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        confirm = browser.open(link, timeout=10).read().decode()  # the link's page: who, until when
        assert "This link works once" in confirm, confirm[:500]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf}).encode()
        page = browser.open(link, data=body, timeout=10)  # its button signs in, then the lobby
        html = page.read().decode()
        assert page.status == 200
        assert "People to meet" in html, html[:500]

        first = _interactions(db)
        _wait_for(demo, lambda: _interactions(db) > first, 60, "the simulator added no interaction", output)
        assert demo.poll() is None, "".join(output[-40:])  # still serving
    finally:
        stop(demo)
