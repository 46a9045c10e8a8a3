"""Latency and throughput of the recommendations endpoint, on PostgreSQL and Redis, at size M.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mm_serving REDIS_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python benchmarks/serve.py [--attendees 50000] [--requests 1000]

What it does:
1. Builds (once; reused while the size matches) an event of `--attendees` attendees with, per
   attendee on average, one connection and 0.1 blocks and 0.1 not-relevant marks, with COPY.
2. Starts a real HTTP server, daphne (the project's ASGI server), on loopback with DEBUG off and
   the production middleware, and drives it from one client over one keep-alive connection.
3. Measures, one request at a time (one client):
   - floor: `GET /healthz` (HTTP + Django + one query): the cost of the stack itself, the named
     peer every other figure is compared with;
   - miss: the first request for each of `--requests` distinct attendees (cold cache: source,
     filters, exposure counters, cache fill, funnel insert);
   - warm: `--requests` requests cycling over 200 attendees already cached.
   and the serving function alone, in process (no HTTP), for both paths.
4. Prints p50/p99 and requests/s, and checks them against the targets (warm p99 < 20 ms,
   miss p99 < 100 ms).

The live source is a precomputed neighbour-table lookup (`benchmarks/serve_backend.py`): this
measures the serving path, not the model's arithmetic (see the recsys benchmarks for that).
"""

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.serve_settings"

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import redis.connection  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from events.enums import Phase  # noqa: E402
from events.models import Attendee, Event, Organization  # noqa: E402
from events.services import api_key_create  # noqa: E402
from recommendations.models import ModelVersion  # noqa: E402
from recommendations.serving.lists import recommendations_for  # noqa: E402

SLUG = "bench-serve"

# Count Redis round trips (a pipeline is one) by wrapping the socket write of redis-py: measurement
# only, in this process.
_redis_trips = [0]
_send = redis.connection.AbstractConnection.send_packed_command


def _counting_send(self, command, check_health=True):
    _redis_trips[0] += 1
    return _send(self, command, check_health)


redis.connection.AbstractConnection.send_packed_command = _counting_send
TARGET_WARM_P99_MS = 20.0
TARGET_MISS_P99_MS = 100.0


def build(n: int) -> Event:
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Benchmarks"})
    event = Event.objects.filter(slug=SLUG).first()
    if event is not None and event.attendees.count() == n:
        return event
    if event is not None:
        print(f"rebuilding {SLUG}: size changed", flush=True)
        event.delete()
    started = time.perf_counter()
    event = Event.objects.create(
        organization=org, slug=SLUG, name="Serving benchmark", phase=Phase.LIVE, exposure_cap_share=0.05
    )
    now = timezone.now()
    connection.ensure_connection()
    raw = connection.connection
    with (
        raw.cursor() as cur,
        cur.copy(
            'COPY events_attendee (event_id, external_id, display_name, headline, company, role, "group", '
            "consent_be_recommended, consent_receive_recommendations, consent_training, created_at, updated_at) "
            "FROM STDIN"
        ) as copy,
    ):
        for i in range(n):
            # 2 % have withdrawn consent to be recommended: the filter has something to do.
            copy.write_row(
                (
                    event.pk,
                    f"a{i}",
                    f"Attendee {i}",
                    "Engineer",
                    f"Company {i % 997}",
                    "",
                    "",
                    i % 50 != 0,
                    True,
                    True,
                    now,
                    now,
                )
            )
    first = Attendee.objects.filter(event=event).order_by("pk").values_list("pk", flat=True).first()
    rng = np.random.default_rng(0)

    def pairs(count: int) -> set[tuple[int, int]]:
        a = rng.integers(0, n, size=count)
        b = rng.integers(0, n, size=count)
        return {(int(x), int(y)) for x, y in zip(a, b, strict=True) if x != y}

    connections = {}
    for x, y in pairs(n):
        connections.setdefault((min(x, y), max(x, y)), (x, y))  # one per unordered pair
    with raw.cursor() as cur:
        with cur.copy(
            "COPY events_connection (event_id, requester_id, recipient_id, status, message, created_at) FROM STDIN"
        ) as copy:
            for k, (x, y) in enumerate(connections.values()):
                status = ("requested", "accepted", "declined")[k % 3]
                copy.write_row((event.pk, first + x, first + y, status, "", now))
        with cur.copy("COPY events_block (event_id, blocker_id, blocked_id, created_at) FROM STDIN") as copy:
            for x, y in pairs(n // 10):
                copy.write_row((event.pk, first + x, first + y, now))
        with cur.copy("COPY events_notrelevant (event_id, attendee_id, target_id, created_at) FROM STDIN") as copy:
            for x, y in pairs(n // 10):
                copy.write_row((event.pk, first + x, first + y, now))
        cur.execute(
            "ANALYZE events_attendee; ANALYZE events_connection; ANALYZE events_block; ANALYZE events_notrelevant"
        )
    ModelVersion.objects.create(
        event=event, number=1, status=ModelVersion.Status.PUBLISHED, input_fingerprint="bench", published_at=now
    )
    print(
        f"built {n:,} attendees, {len(connections):,} connections in {time.perf_counter() - started:.1f} s", flush=True
    )
    return event


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def report(name: str, latencies_ms: list[float], wall_s: float, cpu_s: float | None = None) -> dict:
    row = {
        "name": name,
        "n": len(latencies_ms),
        "p50": statistics.median(latencies_ms),
        "p99": percentile(latencies_ms, 99),
        "rps": len(latencies_ms) / wall_s,
    }
    cpu = "" if cpu_s is None else f"  cpu {cpu_s * 1000 / len(latencies_ms):5.2f} ms/req"
    print(
        f"  {name:<30} n={row['n']:>5}  p50 {row['p50']:7.2f} ms  p99 {row['p99']:7.2f} ms  "
        f"{row['rps']:6.0f} req/s{cpu}",
        flush=True,
    )
    return row


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc: what a request costs the server whatever the
    load of the machine (wall-clock latency on a shared host mostly measures the queue for a core)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_http(
    conn: http.client.HTTPConnection, paths: list[str], headers: dict, pid: int
) -> tuple[list[float], float, float]:
    latencies = []
    cpu = process_cpu_seconds(pid)
    started = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        latencies.append((time.perf_counter() - t0) * 1000)
        if response.status != 200:
            raise SystemExit(f"GET {path} -> {response.status}: {body[:200]!r}")
    return latencies, time.perf_counter() - started, process_cpu_seconds(pid) - cpu


def http_round(*, env: dict, port: int, headers: dict, requests: int, miss_paths, warm_paths) -> dict:
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "matchmaking_site.asgi:application"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    plain = {"Host": "127.0.0.1"}
    try:
        conn = None
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/healthz", headers=plain)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    break
                time.sleep(0.2)
            except OSError:
                conn.close()
                time.sleep(0.2)
        else:
            raise SystemExit(f"daphne did not start: {server.stderr.read().decode()[-500:]}")
        if server.poll() is not None:
            raise SystemExit(f"daphne exited: {server.stderr.read().decode()[-500:]}")
        pid = server.pid
        run_http(conn, ["/healthz"] * 50, plain, pid)  # warm the server up
        out = {
            "floor": report("floor: GET /healthz", *run_http(conn, ["/healthz"] * requests, plain, pid)),
            "miss": report("miss: recommendations", *run_http(conn, miss_paths, headers, pid)),
            "warm": report("warm: recommendations", *run_http(conn, warm_paths, headers, pid)),
        }
        conn.close()
        return out
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attendees", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--num-results", type=int, default=10)
    parser.add_argument("--port", type=int, default=0, help="0: a free port chosen at start")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("benchmarks/serve.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("benchmarks/serve.py needs Redis: set REDIS_URL=redis://...")
    if args.requests * 4 + 100 > args.attendees:
        raise SystemExit("--requests too large for --attendees: each miss needs an attendee never served")

    if not args.port:
        # A free port, so that the run cannot talk to some other server on a fixed one.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    event = build(args.attendees)
    _, secret = api_key_create(organization=event.organization, name=f"bench {time.time():.0f}")
    headers = {"Authorization": f"Api-Key {secret}", "Host": "127.0.0.1"}
    cache.clear()  # every list is a miss until served once
    ids = list(Attendee.objects.filter(event=event).order_by("pk").values_list("external_id", flat=True))
    rng = np.random.default_rng(1)
    order = [ids[i] for i in rng.permutation(len(ids))]
    url = f"/api/v1/events/{SLUG}/attendees/{{}}/recommendations/?num_results={args.num_results}"

    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.serve_settings",
        "PYTHONPATH": str(ROOT),
        "DEBUG": "false",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    print(
        f"\nserve benchmark: {args.attendees:,} attendees, PostgreSQL + Redis, daphne on loopback, one client, "
        f"num_results={args.num_results}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    rows = {}
    configs = [("pool", {"DATABASE_POOL": "true"}), ("no pool", {"DATABASE_POOL": "false"})]
    for (label, extra), offset in zip(configs, (0, 2 * args.requests), strict=True):
        miss_ids = order[offset : offset + args.requests]
        warm_ids = miss_ids[:200]
        print(f" daphne, {label}:")
        rows[label] = http_round(
            env={**base_env, **extra},
            port=args.port,
            headers=headers,
            requests=args.requests,
            miss_paths=[url.format(x) for x in miss_ids],
            warm_paths=[url.format(warm_ids[i % len(warm_ids)]) for i in range(args.requests)],
        )
    miss_inproc = order[args.requests : 2 * args.requests]

    # The serving function alone, in this process: what the endpoint adds on top of it is
    # authentication, the attendee lookup, the funnel insert, JSON and HTTP.
    attendees = {a.external_id: a for a in Attendee.objects.filter(event=event, external_id__in=miss_inproc)}
    for a in attendees.values():
        a.event = event
    lat = []
    t_start, c_start = time.perf_counter(), time.process_time()
    for x in miss_inproc:
        t0 = time.perf_counter()
        recommendations_for(attendee=attendees[x], num_results=args.num_results)
        lat.append((time.perf_counter() - t0) * 1000)
    print(" in process, no HTTP:")
    report("miss: recommendations_for()", lat, time.perf_counter() - t_start, time.process_time() - c_start)
    lat = []
    t_start, c_start = time.perf_counter(), time.process_time()
    for i in range(args.requests):
        t0 = time.perf_counter()
        recommendations_for(attendee=attendees[miss_inproc[i % 200]], num_results=args.num_results)
        lat.append((time.perf_counter() - t0) * 1000)
    report("warm: recommendations_for()", lat, time.perf_counter() - t_start, time.process_time() - c_start)

    # Round trips per request, the figure that load on a shared machine cannot move: the full
    # endpoint through Django's test client (same middleware, auth and view; no sockets to daphne).
    print(" round trips per request (Django test client, in process):")
    client = Client(HTTP_AUTHORIZATION=headers["Authorization"])
    trips_ids = order[3 * args.requests : 3 * args.requests + 100]
    for label, paths in (
        ("miss", [url.format(x) for x in trips_ids]),
        ("warm", [url.format(x) for x in trips_ids]),
    ):
        before = _redis_trips[0]
        with CaptureQueriesContext(connection) as queries:
            for path in paths:
                assert client.get(path).status_code == 200
        print(
            f"  {label}: {len(queries.captured_queries) / len(paths):.1f} PostgreSQL queries, "
            f"{(_redis_trips[0] - before) / len(paths):.1f} Redis round trips"
        )

    floor, miss, warm_row = rows["pool"]["floor"], rows["pool"]["miss"], rows["pool"]["warm"]
    print("\n  (targets checked on the pooled configuration, the one to deploy under ASGI)")
    print(
        f"\n  warm p99 {warm_row['p99']:.2f} ms vs target {TARGET_WARM_P99_MS:.0f} ms: "
        f"{'PASS' if warm_row['p99'] < TARGET_WARM_P99_MS else 'FAIL'}; "
        f"{warm_row['p50'] / floor['p50']:.1f}x the /healthz floor at p50"
    )
    print(
        f"  miss p99 {miss['p99']:.2f} ms vs target {TARGET_MISS_P99_MS:.0f} ms: "
        f"{'PASS' if miss['p99'] < TARGET_MISS_P99_MS else 'FAIL'}; "
        f"{miss['p50'] / floor['p50']:.1f}x the /healthz floor at p50"
    )
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = warm_row["p99"] < TARGET_WARM_P99_MS and miss["p99"] < TARGET_MISS_P99_MS
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
