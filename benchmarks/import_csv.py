"""Bulk import of Amazon Personalize interactions CSV: time and peak memory at two file sizes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mm_ingest REDIS_URL=redis://127.0.0.1:6379/1 \
        .venv/bin/python benchmarks/import_csv.py [--sizes 100000 1000000]

For each size: generate a CSV (5,000 attendees, 100 rooms, 500 content items, 50 interest tags,
joins with dwell, content views, questionnaire answers), then run
`manage.py import_interactions --event ... FILE` in a child process and report its wall time,
rows/s and peak RSS (from wait4's rusage of that child alone), and, as the physical limit, the
time of one psycopg COPY of the same rows into the same table (ids resolved beforehand, untimed;
its own memory is not the importer's and is not reported). Memory must not grow with the file:
the importer holds one chunk of rows at a time. For reference the peak RSS of an idle Django
process (`manage.py check`) is printed too: the importer's own footprint is the difference.
The bench events are deleted at the end.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.bench_events import LIVE_START, bench_event, drop_event  # noqa: E402
from events.interchange import INTERACTIONS_HEADER  # noqa: E402
from events.models import Attendee, Content, Event, InterestTag, Room  # noqa: E402

N_ATTENDEES, N_ROOMS, N_CONTENT, N_TAGS = 5000, 100, 500, 50


def setup_event(slug: str) -> Event:
    return bench_event(slug, attendees=N_ATTENDEES, rooms=N_ROOMS, contents=N_CONTENT, tags=N_TAGS)


def generate(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    start = int(LIVE_START.timestamp())
    with path.open("w") as out:
        out.write(",".join(INTERACTIONS_HEADER) + "\n")
        for i in range(rows):
            ts = start + rng.randrange(9 * 3600)
            attendee = f"a{rng.randrange(N_ATTENDEES)}"
            kind = rng.random()
            # The row number in the value keeps every row distinct (identical rows are one interaction).
            if kind < 0.6:
                out.write(f"r{rng.randrange(N_ROOMS)},{attendee},{ts},join_room,{30 + i % 3600}\n")
            elif kind < 0.95:
                out.write(f"content:c{rng.randrange(N_CONTENT)},{attendee},{ts},view_content,{1 + i % 1800}\n")
            else:
                out.write(f"interest:t{rng.randrange(N_TAGS)},{attendee},{ts + i},questionnaire,\n")


def run_child(args: list[str]) -> tuple[float, int, int]:
    """Run a child process; return (seconds, peak RSS in MiB, exit code) for that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = proc.stdout.read().decode().strip()
    if output:
        print(f"    {output}")
    return elapsed, usage.ru_maxrss // 1024, proc.returncode  # ru_maxrss is in KiB on Linux


COPY_SQL = (
    "COPY events_interaction (event_id, attendee_id, room_id, content_id, interest_id, type, value, occurred_at,"
    " client_event_id, source, qualifies, created_at) FROM STDIN"
)


def copy_limit(event: Event, path: Path) -> float:
    """The physical limit: the same rows, ids resolved beforehand (untimed), written by one COPY into
    the same table (same indexes, same foreign keys) in one transaction. Returns seconds."""
    attendees = dict(Attendee.objects.filter(event=event).values_list("external_id", "pk"))
    rooms = dict(Room.objects.filter(event=event).values_list("external_id", "pk"))
    contents = dict(Content.objects.filter(event=event).values_list("external_id", "pk"))
    tags = dict(InterestTag.objects.filter(event=event).values_list("slug", "pk"))
    now = datetime.now(UTC)
    rows = []
    with path.open() as f:
        next(f)
        for n, line in enumerate(f):
            user, item, ts, type_, value = line.rstrip("\n").split(",")
            kind, _, ext = user.partition(":") if ":" in user else ("room", "", user)
            rows.append(
                (
                    event.pk,
                    attendees[item],
                    rooms.get(ext) if kind == "room" else None,
                    contents.get(ext) if kind == "content" else None,
                    tags.get(ext) if kind == "interest" else None,
                    type_,
                    float(value) if value else None,
                    datetime.fromtimestamp(int(ts), tz=UTC),
                    f"copy:{n}",
                    "import",
                    True,
                    now,
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    raw = connection.connection
    start = time.perf_counter()
    with raw.cursor() as cur, cur.copy(COPY_SQL) as copy:
        for row in rows:
            copy.write_row(row)
    raw.commit()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--no-copy", action="store_true", help="skip the COPY limit (saves time)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database: this benchmark measures PostgreSQL.")
    manage = [sys.executable, str(ROOT / "manage.py")]
    _, idle_rss, _ = run_child([*manage, "check"])
    print(f"idle Django process (manage.py check): peak RSS {idle_rss} MiB")
    results = []
    events = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in args.sizes:
                slug = f"bench-import-{size}-{int(time.time())}"
                events.append(setup_event(slug))
                path = Path(tmp) / f"interactions-{size}.csv"
                generate(path, size, seed=size)
                mib = path.stat().st_size / 2**20
                print(f"{size:,} rows ({mib:.0f} MiB): importing...")
                seconds, rss, code = run_child(
                    [*manage, "import_interactions", "--event", slug, "--no-progress", str(path)]
                )
                if code != 0:
                    raise SystemExit(f"import of {size} rows exited with {code}")
                imported = Event.objects.get(slug=slug).interactions.count()
                print(
                    f"    {seconds:.1f} s, {size / seconds:,.0f} rows/s, peak RSS {rss} MiB, {imported:,} rows in table"
                )
                copy_s = None if args.no_copy else copy_limit(events[-1], path)
                if copy_s:
                    print(f"    COPY of the same rows: {copy_s:.1f} s, {size / copy_s:,.0f} rows/s")
                results.append((size, mib, seconds, rss, copy_s))
    finally:
        for event in events:
            drop_event(event)
        try:
            import redis

            # Each committed chunk queued a processing task; no worker ran them.
            redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")
        except Exception as exc:  # the broker is optional for the figures
            print(f"(could not purge the celery queue: {exc})")
    print()
    print(
        f"{'rows':>10} {'file MiB':>9} {'seconds':>8} {'rows/s':>9} {'peak RSS MiB':>13}"
        f" {'COPY rows/s':>12} {'ratio':>6}"
    )
    for size, mib, seconds, rss, copy_s in results:
        copy_cols = f"{size / copy_s:>12,.0f} {seconds / copy_s:>5.2f}x" if copy_s else f"{'-':>12} {'-':>6}"
        print(f"{size:>10,} {mib:>9.0f} {seconds:>8.1f} {size / seconds:>9,.0f} {rss:>13} {copy_cols}")
    if len(results) >= 2:
        (s0, _, _, r0, _), (s1, _, _, r1, _) = results[0], results[-1]
        print(f"file {s1 / s0:.0f}x larger -> peak RSS x{r1 / r0:.2f} (idle Django: {idle_rss} MiB)")


if __name__ == "__main__":
    main()
