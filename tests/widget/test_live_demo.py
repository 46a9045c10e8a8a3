"""The live widget in the embedded default (SQLite, local-memory cache, in-memory channel layer),
under the demo's own traffic: four attendees each sit in a room page while the simulator walks 80
others between rooms for a minute. Every widget must see every change: each message numbered one
past the last, the last number the one the server handed out, and the list on screen the one the
REST API gives. (In `make demo` a widget froze: its numbers went 1, 2, 1, 1 once the cache culled
the counter, and the widget ignored everything after.)"""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live import ROOT, asgi_server, chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAFFIC_SECONDS = 60
SETTLE_SECONDS = 20


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def rows(db: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def listen(page, frames: list[dict]) -> None:
    """Keep every message the page's widget socket receives, in order."""

    def on_socket(ws):
        if "/suggestions/" in ws.url:
            ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)


def numbering_faults(frames: list[dict]) -> list[str]:
    """Messages not numbered one past the one before (a reconnect's hello starts afresh)."""
    faults, last = [], None
    for frame in frames:
        if frame["type"] == "hello":
            last = frame["seq"]
        elif frame["type"] == "suggestions.changed":
            if last is None or frame["seq"] != last + 1:
                faults.append(f"{last} -> {frame['seq']}")
            last = frame["seq"]
    return faults


def test_four_room_widgets_see_every_change_through_a_minute_of_demo_traffic(tmp_path):
    db = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        MODEL_ARTIFACT_ROOT=str(tmp_path / "models"),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "seed_demo")
    watchers = ["att-0001", "att-0002", "att-0003", "att-0004"]
    rooms = [r for (r,) in rows(db, "select r.external_id from events_room r order by r.id")][:4]
    assert len(rooms) == 4

    log = tmp_path / "server.log"
    with asgi_server(env, log=log) as base:
        links = [
            manage(env, "attendee_login_link", "--event", "demo", "--attendee", who, "--base-url", base).split()[-1]
            for who in watchers
        ]
        with chromium() as browser:
            pages, frames = [], []
            for link, room in zip(links, rooms, strict=True):
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                seen: list[dict] = []
                listen(page, seen)
                page.goto(link)
                page.click("#pt-sign-in")
                page.wait_for_url("**/e/demo/")
                page.goto(f"{base}/e/demo/rooms/{room}/")
                page.wait_for_selector("[data-mm-widget] .mmw-status.mmw-live", timeout=30_000)
                pages.append(page)
                frames.append(seen)

            walk = ["--walkers", "80", "--median-stay", "15", "--seed", "7", "--duration", str(TRAFFIC_SECONDS)]
            traffic = subprocess.Popen(
                [sys.executable, "manage.py", "simulate_traffic", "--event", "demo", "--server", base, *walk],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            # Keep the pages' event loops turning (frames are delivered while Playwright waits).
            while traffic.poll() is None:
                pages[0].wait_for_timeout(1000)
            assert traffic.returncode == 0, traffic.stderr[-2000:]

            # The walkers have all walked out: the lists settle. Each widget must then show what
            # REST says and hold the last number the server handed out.
            deadline = time.monotonic() + SETTLE_SECONDS
            while True:
                states = []
                for who, page in zip(watchers, pages, strict=True):
                    [(pk,)] = rows(db, "select id from events_attendee where external_id = ?", who)
                    served = rows(db, "select value from recommendations_pushsequence where name = ?", f"attendee:{pk}")
                    rest = page.evaluate(
                        """async (who) => {
                            const r = await fetch(`/api/v1/events/demo/attendees/${who}/recommendations/?num_results=6`,
                                                  {credentials: "same-origin", headers: {Accept: "application/json"}});
                            return (await r.json()).items.map((i) => i.external_id);
                        }""",
                        who,
                    )
                    shown = page.eval_on_selector_all("[data-mm-widget] .mmw-card", "cs => cs.map(c => c.dataset.id)")
                    seq = int(page.get_attribute("[data-mm-widget]", "data-seq") or 0)
                    states.append((who, shown, rest, seq, served[0][0] if served else 0))
                if all(shown == rest and seq == served for _, shown, rest, seq, served in states):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"widgets out of step after the traffic (who, shown, REST, seq, server seq): {states}")
                pages[0].wait_for_timeout(1000)

    changes = [sum(f["type"] == "suggestions.changed" for f in seen) for seen in frames]
    faults = {who: numbering_faults(seen) for who, seen in zip(watchers, frames, strict=True)}
    assert all(n >= 1 for n in changes) and sum(changes) >= 10, f"too little traffic to prove anything: {changes}"
    assert not any(faults.values()), f"messages out of sequence: {faults}"
