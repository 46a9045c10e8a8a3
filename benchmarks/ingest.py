"""Sustained ingestion rate: interactions/s through the REST API, against a raw COPY, same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mm_ingest REDIS_URL=redis://127.0.0.1:6379/1 \
        .venv/bin/python benchmarks/ingest.py [--runs 3] [--batches 100] [--servers 1] [--clients 4]

What is measured, per run, with the same rows (batches of 500 interactions of 2,000 attendees
over 50 rooms and 200 content items):

- api: real HTTP to daphne server process(es) started here (`--servers N` daphne processes on N
  ports, clients spread over them as a load balancer would), `--clients` keep-alive connections
  posting pre-encoded JSON batches to POST /api/v1/events/{event}/interactions/, production settings
  (DEBUG off). Every item must come back `accepted`. Includes authentication, parsing, validation,
  resolution, the insert, the commit and the after-commit publish of the processing task to Redis.
- copy_500: psycopg `cursor.copy` of the same rows into events_interaction, one COPY and one commit
  per 500 rows: the physical limit of the database at the same transaction grain.
- copy_all: one COPY of all the rows in one transaction, the absolute limit, for reference.

Prints the median of `--runs` runs and the ratio copy_500 / api. The bench event is deleted at the end.
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.bench_events import LIVE_START, bench_event, drop_event  # noqa: E402
from events.models import Attendee, Content, Event, Room  # noqa: E402
from events.services import api_key_create  # noqa: E402

BATCH = 500
N_ATTENDEES, N_ROOMS, N_CONTENT = 2000, 50, 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_event(slug: str) -> tuple[Event, str]:
    event = bench_event(slug, attendees=N_ATTENDEES, rooms=N_ROOMS, contents=N_CONTENT)
    _, secret = api_key_create(organization=event.organization, name=f"bench {slug}")
    return event, secret


def make_items(prefix: str, n: int, rng: random.Random) -> list[dict]:
    items = []
    for i in range(n):
        kind = rng.random()
        at = (LIVE_START + timedelta(seconds=rng.randrange(9 * 3600))).isoformat()
        base = {"client_event_id": f"{prefix}-{i}", "attendee_id": f"a{rng.randrange(N_ATTENDEES)}", "occurred_at": at}
        if kind < 0.5:
            base.update(context_kind="room", context_id=f"r{rng.randrange(N_ROOMS)}", type="join_room")
            base["value"] = rng.randrange(5, 3600)
        elif kind < 0.9:
            base.update(context_kind="content", context_id=f"c{rng.randrange(N_CONTENT)}", type="view_content")
            base["value"] = rng.randrange(1, 1800)
        else:
            base.update(context_kind="content", context_id=f"c{rng.randrange(N_CONTENT)}", type="chat")
        items.append(base)
    return items


def start_servers(n: int) -> tuple[list[subprocess.Popen], list[int]]:
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    procs, ports = [], []
    for _ in range(n):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "daphne"),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-v",
                    "0",
                    "matchmaking_site.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports.append(port)
    for port in ports:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"daphne on port {port} did not start")
    return procs, ports


def api_run(bodies: list[bytes], slug: str, secret: str, ports: list[int], clients: int) -> float:
    """Post all bodies over `clients` keep-alive connections; return seconds taken."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    errors: list[str] = []
    headers = {"Authorization": f"Api-Key {secret}", "Content-Type": "application/json"}
    path = f"/api/v1/events/{slug}/interactions/"

    def worker(n: int):
        conn = http.client.HTTPConnection("127.0.0.1", ports[n % len(ports)], timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                _, body = queue.pop()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                errors.append(f"HTTP {response.status}: {data[:200]!r}")
                continue
            accepted = json.loads(data)["accepted"]
            if accepted != BATCH:
                errors.append(f"only {accepted} of {BATCH} accepted: {data[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"API run failed: {errors[0]} ({len(errors)} errors)")
    return elapsed


COPY_SQL = (
    "COPY events_interaction (event_id, attendee_id, room_id, content_id, interest_id, type, value, occurred_at,"
    " client_event_id, source, qualifies, created_at) FROM STDIN"
)


def copy_rows(event: Event, items: list[dict], prefix: str) -> list[tuple]:
    attendees = dict(Attendee.objects.filter(event=event).values_list("external_id", "pk"))
    rooms = dict(Room.objects.filter(event=event).values_list("external_id", "pk"))
    contents = dict(Content.objects.filter(event=event).values_list("external_id", "pk"))
    now = datetime.now(UTC)
    rows = []
    for item in items:
        room = rooms.get(item["context_id"]) if item["context_kind"] == "room" else None
        content = contents.get(item["context_id"]) if item["context_kind"] == "content" else None
        value = item.get("value")
        rows.append(
            (
                event.pk,
                attendees[item["attendee_id"]],
                room,
                content,
                None,
                item["type"],
                value,
                datetime.fromisoformat(item["occurred_at"]),
                f"{prefix}{item['client_event_id']}",
                "live",
                value is None or value >= 60,
                now,
            )
        )
    return rows


def copy_run(dsn: str, rows: list[tuple], grain: int) -> float:
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        for i in range(0, len(rows), grain):
            with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                for row in rows[i : i + grain]:
                    copy.write_row(row)
            conn.commit()
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=100, help="batches of 500 per run")
    parser.add_argument("--servers", type=int, default=1, help="daphne processes")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP connections")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database: this benchmark measures PostgreSQL.")
    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} dbname={db['NAME']} user={db['USER']}"
    if db.get("PASSWORD"):
        dsn += f" password={db['PASSWORD']}"

    slug = f"bench-ingest-{int(time.time())}"
    event, secret = setup_event(slug)
    rng = random.Random(42)
    n = args.batches * BATCH
    procs, ports = start_servers(args.servers)
    results = {"api": [], "copy_500": [], "copy_all": []}
    try:
        print(
            f"{n:,} interactions per run in batches of {BATCH}; {args.runs} runs; "
            f"{args.servers} daphne process(es), {args.clients} client connection(s); {os.cpu_count()} CPUs"
        )
        # Warm-up: connections, caches, the first request's imports.
        api_run([json.dumps({"interactions": make_items("warm", BATCH, rng)}).encode()], slug, secret, ports, 1)
        for run in range(args.runs):
            items = make_items(f"r{run}", n, rng)
            bodies = [json.dumps({"interactions": items[i : i + BATCH]}).encode() for i in range(0, n, BATCH)]
            rows = copy_rows(event, items, "")
            api_s = api_run(bodies, slug, secret, ports, args.clients)
            copy500_s = copy_run(dsn, [(*r[:8], "c5-" + r[8], *r[9:]) for r in rows], BATCH)
            copyall_s = copy_run(dsn, [(*r[:8], "ca-" + r[8], *r[9:]) for r in rows], len(rows))
            for key, seconds in (("api", api_s), ("copy_500", copy500_s), ("copy_all", copyall_s)):
                results[key].append(n / seconds)
            print(
                f"run {run + 1}: api {n / api_s:,.0f}/s   copy per 500 {n / copy500_s:,.0f}/s   "
                f"one copy {n / copyall_s:,.0f}/s"
            )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        drop_event(event)
        try:
            import redis

            # The after-commit publishes queued a processing task per batch; no worker ran them.
            redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")
        except Exception as exc:  # the broker is optional for the figures
            print(f"(could not purge the celery queue: {exc})")

    med = {k: statistics.median(v) for k, v in results.items()}
    print()
    print(f"median api        {med['api']:>10,.0f} interactions/s   (target >= 5,000)")
    ratio = med["copy_500"] / med["api"]
    print(f"median copy/500   {med['copy_500']:>10,.0f} interactions/s   ratio copy/api = {ratio:.2f}x (target <= 3x)")
    print(f"median one copy   {med['copy_all']:>10,.0f} interactions/s   ratio = {med['copy_all'] / med['api']:.2f}x")


if __name__ == "__main__":
    main()
