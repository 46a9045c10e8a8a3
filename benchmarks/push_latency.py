"""Push latency: from an ingested interaction (REST POST) to the widget's message, on loopback.

200 widget WebSockets (attendee tokens) stay connected to a daphne server that uses PostgreSQL and
Redis (cache + channel layer). Concurrent "platforms" POST presence batches (a join, later a leave)
for attendees moving between small rooms; every join or leave changes the top list of the mover
and of everyone in that room ("here now"), so the benchmark knows exactly which widgets must hear
about it. For each such widget: time from just before the POST to the message's arrival.

Reported: p50 / p99 / max, messages missing after 5 s, sequence-number gaps (must be 0), and, in the
same run, two floors to compare against: the REST POST round trip alone and a WebSocket ping/pong
on the same server (`/ws/ping/`), i.e. what loopback + daphne cost without any of our work.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> REDIS_URL=redis://127.0.0.1:6379/<n> \\
        python benchmarks/push_latency.py [--clients 200] [--streams 8] [--moves 400]

Target: p99 < 500 ms with zero dropped sequence numbers; at 1,000 sockets, 8 posters and 2 processes
(`--clients 1000 --processes 2`), p99 < 300 ms. Starts its own daphne (stopped at the end)
unless `--server URL` is given; (re)creates the event `bench-push` in the configured database.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.utils import timezone  # noqa: E402

from events.api.auth import attendee_token_issue  # noqa: E402
from events.models import Attendee, Event, Organization, Room  # noqa: E402
from events.services import api_key_create  # noqa: E402

SLUG = "bench-push"
ROOM_CAPACITY = 4  # mover + up to 3 others: each stays within the "here now" additions cap
WAIT = 5.0


def setup(n_clients: int, n_rooms: int, exposure_cap: float | None = None):
    Event.objects.filter(slug=SLUG).delete()
    org, _ = Organization.objects.get_or_create(slug="bench-org", defaults={"name": "Bench Org"})
    now = timezone.now()
    event = Event.objects.create(
        organization=org,
        slug=SLUG,
        name="Push latency bench",
        live_starts_at=now - timedelta(hours=1),
        live_ends_at=now + timedelta(hours=6),
        on_demand_ends_at=now + timedelta(days=1),
        **({"exposure_cap_share": exposure_cap} if exposure_cap is not None else {}),
    )
    Room.objects.bulk_create([Room(event=event, external_id=f"r{i:03d}", name=f"Room {i}") for i in range(n_rooms)])
    Attendee.objects.bulk_create(
        [Attendee(event=event, external_id=f"b{i:04d}", display_name=f"Bench {i}") for i in range(n_clients)]
    )
    attendees = list(Attendee.objects.filter(event=event).order_by("pk"))
    tokens = {a.external_id: attendee_token_issue(attendee=a) for a in attendees}
    _, key = api_key_create(organization=org, name="push bench")
    return tokens, key, [f"r{i:03d}" for i in range(n_rooms)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(processes: int = 1) -> tuple[subprocess.Popen, str]:
    """daphne (one process), or uvicorn with `processes` workers on one port, as production runs."""
    port = free_port()
    # As the deploy runs it (deploy/k8s/config.yaml, docker-compose.yml): a connection pool per
    # process. Without it every request and every push thread's job opened a PostgreSQL connection
    # (p99 769 ms against 334 ms with it, same tree, 1,000 sockets, 2 processes; 2026-12-06).
    env = {
        "DATABASE_POOL": "true",
        **os.environ,
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }
    if processes == 1:
        command = ["daphne", "-b", "127.0.0.1", "-p", str(port), "matchmaking_site.asgi:application"]
    else:
        command = ["uvicorn", "matchmaking_site.asgi:application", "--port", str(port), "--workers", str(processes)]
        command += ["--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("PUSH_BENCH_SERVER_LOG", os.devnull), "w"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urlopen(f"{base}/healthz", timeout=2)
            return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the server did not start") from None
            time.sleep(0.5)


class Client:
    def __init__(self, external_id: str):
        self.external_id = external_id
        self.seq = None
        self.gaps = 0
        self.arrivals: asyncio.Queue = asyncio.Queue()

    async def run(self, ws_base: str, token: str, ready: asyncio.Event, counter: list):
        async with websockets.connect(f"{ws_base}/ws/events/{SLUG}/suggestions/?token={token}", max_queue=None) as ws:
            hello = json.loads(await ws.recv())
            self.seq = hello["seq"]
            counter[0] += 1
            if counter[0] == counter[1]:
                ready.set()
            async for raw in ws:
                arrived = time.perf_counter()
                msg = json.loads(raw)
                if msg.get("type") != "suggestions.changed":
                    continue
                if msg["seq"] != self.seq + 1:
                    self.gaps += 1
                self.seq = msg["seq"]
                self.arrivals.put_nowait(arrived)


def post(base: str, key: str, items: list[dict]) -> float:
    request = Request(
        f"{base}/api/v1/events/{SLUG}/interactions/",
        data=json.dumps({"interactions": items}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
        method="POST",
    )
    started = time.perf_counter()
    with urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    if body["rejected"]:
        raise SystemExit(f"rejected: {body['results']}")
    return time.perf_counter() - started


async def stream(base, key, clients, people, rooms, moves, rng, latencies, post_times, missing, stale):
    """One platform: moves its own people between its own rooms, one batch at a time."""
    where = dict.fromkeys(people)
    occupants = {r: [] for r in rooms}
    for _ in range(moves):
        mover = rng.choice(people)
        if where[mover] is None:
            open_rooms = [r for r in rooms if len(occupants[r]) < ROOM_CAPACITY]
            room = rng.choice(open_rooms)
            kind, audience = "join_room", [mover, *occupants[room]]
            if not occupants[room]:
                audience = []  # alone in a room: nobody's list changes
            occupants[room].append(mover)
            where[mover] = room
        else:
            room = where[mover]
            occupants[room].remove(mover)
            where[mover] = None
            kind, audience = "leave_room", [mover, *occupants[room]]
            if not occupants[room]:
                audience = []
        item = {
            "client_event_id": f"bench:{uuid.uuid4()}",
            "attendee_id": mover,
            "context_kind": "room",
            "context_id": room,
            "type": kind,
            "occurred_at": timezone.now().isoformat(),
        }
        started = time.perf_counter()
        post_times.append(await asyncio.to_thread(post, base, key, [item]))
        for person in audience:
            # The first message this person's widget got after the POST began. WHY skip earlier
            # ones: a message counted missing (or an extra push) stays queued, and taking it for
            # this move gave negative latencies (medians of about -7 s at 8 streams).
            deadline = time.perf_counter() + WAIT
            try:
                while True:
                    timeout = deadline - time.perf_counter()
                    arrived = await asyncio.wait_for(clients[person].arrivals.get(), timeout=max(0.0, timeout))
                    if arrived >= started:
                        latencies.append(arrived - started)
                        break
                    stale[0] += 1
            except TimeoutError:
                missing[0] += 1
    # Walk everyone out, so that a second run starts from empty rooms.
    for person, room in where.items():
        if room is not None:
            item = {
                "client_event_id": f"bench:{uuid.uuid4()}",
                "attendee_id": person,
                "context_kind": "room",
                "context_id": room,
                "type": "leave_room",
                "occurred_at": timezone.now().isoformat(),
            }
            await asyncio.to_thread(post, base, key, [item])


async def ping_floor(ws_base: str, n: int) -> list[float]:
    out = []
    origin = ws_base.replace("ws://", "http://")
    async with websockets.connect(f"{ws_base}/ws/ping/", origin=origin) as ws:
        for _ in range(n):
            started = time.perf_counter()
            await ws.send(json.dumps({"type": "ping"}))
            await ws.recv()
            out.append(time.perf_counter() - started)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


async def main_async(args, tokens, key, rooms, base):
    ws_base = base.replace("http://", "ws://")
    names = sorted(tokens)
    clients = {name: Client(name) for name in names}
    ready = asyncio.Event()
    counter = [0, len(names)]
    connect_started = time.perf_counter()
    tasks = [asyncio.create_task(clients[n].run(ws_base, tokens[n], ready, counter)) for n in names]
    await asyncio.wait_for(ready.wait(), timeout=120)
    connect_seconds = time.perf_counter() - connect_started

    rng = random.Random(args.seed)
    per_stream_people = [names[i :: args.streams] for i in range(args.streams)]
    per_stream_rooms = [rooms[i :: args.streams] for i in range(args.streams)]
    latencies: list[float] = []
    post_times: list[float] = []
    missing = [0]
    stale = [0]  # messages that arrived before the move they were waited for (an earlier move's)
    started = time.perf_counter()
    await asyncio.gather(
        *[
            stream(
                base,
                key,
                clients,
                per_stream_people[i],
                per_stream_rooms[i],
                args.moves // args.streams,
                random.Random(rng.random()),
                latencies,
                post_times,
                missing,
                stale,
            )
            for i in range(args.streams)
        ]
    )
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)  # the walk-out's messages, for the gap count
    floor = await ping_floor(ws_base, 200)
    gaps = sum(c.gaps for c in clients.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    print(f"clients connected: {len(names)} in {connect_seconds:.1f} s; streams: {args.streams}; moves: {args.moves}")
    print(f"messages measured: {len(latencies)} in {elapsed:.1f} s ({len(latencies) / elapsed:.0f}/s)")
    print(f"{'':34}{'p50':>9}{'p99':>9}{'max':>9}  (ms)")
    print(
        f"{'interaction -> widget message':34}{pct(latencies, 50):9.1f}{pct(latencies, 99):9.1f}"
        f"{max(latencies) * 1000:9.1f}"
    )
    print(
        f"{'  floor: REST POST round trip':34}{pct(post_times, 50):9.1f}{pct(post_times, 99):9.1f}"
        f"{max(post_times) * 1000:9.1f}"
    )
    print(f"{'  floor: WebSocket ping/pong':34}{pct(floor, 50):9.1f}{pct(floor, 99):9.1f}{max(floor) * 1000:9.1f}")
    print(f"missing after {WAIT:.0f} s: {missing[0]} (arrived later: {stale[0]}); sequence gaps: {gaps}")
    ok = pct(latencies, 99) < 500 and gaps == 0 and missing[0] == 0
    print("target (p99 < 500 ms, no gaps, nothing missing):", "met" if ok else "NOT met")
    if args.clients >= 1000 and args.processes >= 2 and args.streams >= 8:
        scaled = pct(latencies, 99) < 300 and gaps == 0 and missing[0] == 0
        print(
            "scale-out target (1,000 sockets, 8 posters, 2 processes: p99 < 300 ms, no gaps):",
            "met" if scaled else "NOT met",
        )
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--streams", type=int, default=8, help="Concurrent platforms posting")
    parser.add_argument("--moves", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server", help="Use this running server instead of starting one")
    parser.add_argument("--processes", type=int, default=1, help="1: daphne; more: uvicorn --workers N")
    parser.add_argument("--exposure-cap", type=float, help="The event's exposure cap share (default: the model's)")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or "postgres" not in os.environ.get("DATABASE_URL", ""):
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark measures the production setup.")
    n_rooms = max(args.streams * 2, args.clients // 5)
    tokens, key, rooms = setup(args.clients, n_rooms, args.exposure_cap)
    proc = None
    base = args.server
    if base is None:
        proc, base = start_server(args.processes)
    try:
        code = asyncio.run(main_async(args, tokens, key, rooms, base.rstrip("/")))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        Event.objects.filter(slug=SLUG).delete()
    sys.exit(code)


if __name__ == "__main__":
    main()
