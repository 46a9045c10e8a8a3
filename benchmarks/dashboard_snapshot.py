"""Cost of the organizer dashboard's snapshot as an event grows, against the physical floor.

The snapshot is a fixed set of aggregate queries (its query count is asserted equal at two sizes
in tests/dashboard/test_snapshot.py); this measures its wall time on PostgreSQL. The peer is the
floor: one `SELECT count(*)` over the event's interactions, the least any figure that looks at
every interaction must pay. The snapshot reads the interactions several times (totals, per-minute
series, active contexts, top rooms, top content), so a few floors is the expected shape.

Everything is created inside one transaction that is rolled back at the end: nothing is left.

    DATABASE_URL=postgres://... PYTHONPATH=. .venv/bin/python benchmarks/dashboard_snapshot.py
    ... benchmarks/dashboard_snapshot.py --sizes 1000x20 20000x50
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from dashboard.selectors import dashboard_snapshot  # noqa: E402
from events.models import Event, Organization  # noqa: E402

START = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)
NOW = START + timedelta(hours=8)
ROOMS = 20
CONTENTS = 40
REPEATS = 5


class Rollback(Exception):
    pass


def populate(event: Event, attendees: int, each: int) -> int:
    """Rooms, content, attendees, `each` interactions per attendee over 8 hours, open visits for
    one attendee in twenty, ten suggestions shown per attendee. Set-based SQL: seconds, not hours."""
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO events_room (event_id, external_id, name, description, track) "
            "SELECT %s, 'r' || g, 'Room ' || g, '', '' FROM generate_series(1, %s) g",
            [event.pk, ROOMS],
        )
        c.execute(
            "INSERT INTO events_content (event_id, external_id, title, kind) "
            "SELECT %s, 'c' || g, 'Content ' || g, 'video' FROM generate_series(1, %s) g",
            [event.pk, CONTENTS],
        )
        c.execute(
            'INSERT INTO events_attendee (event_id, external_id, display_name, headline, company, role, "group", '
            "consent_be_recommended, consent_receive_recommendations, consent_training, created_at, updated_at) "
            "SELECT %s, 'a' || g, 'Attendee ' || g, '', '', '', '', true, true, true, now(), now() "
            "FROM generate_series(1, %s) g",
            [event.pk, attendees],
        )
        c.execute(
            """
            WITH a AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events_attendee WHERE event_id = %(e)s),
                 r AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events_room WHERE event_id = %(e)s),
                 ct AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events_content WHERE event_id = %(e)s)
            INSERT INTO events_interaction (event_id, attendee_id, room_id, content_id, type, value, occurred_at,
                                            client_event_id, source, qualifies, created_at)
            SELECT %(e)s, a.id,
                   CASE WHEN k %% 3 <> 0 THEN (SELECT id FROM r WHERE r.n = 1 + (a.n * 7 + k) %% %(rooms)s) END,
                   CASE WHEN k %% 3 = 0 THEN (SELECT id FROM ct WHERE ct.n = 1 + (a.n * 3 + k) %% %(contents)s) END,
                   CASE WHEN k %% 3 = 0 THEN 'view_content' ELSE 'join_room' END,
                   ((a.n * 31 + k * 17) %% 1800)::float,
                   %(start)s + make_interval(secs => ((a.n * 613 + k * 997) %% 28800)),
                   a.n || '-' || k, 'live', ((a.n * 31 + k * 17) %% 1800) >= 60, now()
            FROM a CROSS JOIN generate_series(1, %(each)s) k
            """,
            {"e": event.pk, "rooms": ROOMS, "contents": CONTENTS, "start": START, "each": each},
        )
        c.execute(
            """
            INSERT INTO events_roomvisit (event_id, attendee_id, room_id, joined_at, left_at, close_reason,
                   join_client_event_id, leave_client_event_id, expects_heartbeats, source, created_at)
            SELECT %(e)s, a.id, (SELECT min(id) FROM events_room WHERE event_id = %(e)s) + a.id %% %(rooms)s,
                   %(now)s - interval '10 minutes', NULL, '', 'v' || a.id, '', false, 'live', now()
            FROM events_attendee a WHERE a.event_id = %(e)s AND a.id %% 20 = 0
            """,
            {"e": event.pk, "rooms": ROOMS, "now": NOW},
        )
        c.execute(
            """
            INSERT INTO recommendations_funnelevent (event_id, viewer_id, suggested_id, stage, source, at)
            SELECT %(e)s, a.id, (SELECT min(id) FROM events_attendee WHERE event_id = %(e)s) + (a.id * 13 + k) %% %(n)s,
                   'shown', 'local', now()
            FROM events_attendee a CROSS JOIN generate_series(1, 10) k WHERE a.event_id = %(e)s
            """,
            {"e": event.pk, "n": attendees},
        )
        c.execute("ANALYZE events_interaction")
        c.execute("ANALYZE recommendations_funnelevent")
        c.execute("SELECT count(*) FROM events_interaction WHERE event_id = %s", [event.pk])
        return c.fetchone()[0]


def timed(fn) -> float:
    runs = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def floor_scan(event: Event) -> None:
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM events_interaction WHERE event_id = %s", [event.pk])
        c.fetchone()


def measure(attendees: int, each: int) -> dict:
    try:
        with transaction.atomic():
            org = Organization.objects.create(name="Bench org", slug=f"bench-org-{attendees}x{each}")
            event = Event.objects.create(
                organization=org,
                slug=f"bench-{attendees}x{each}",
                name="Bench",
                live_starts_at=START,
                live_ends_at=START + timedelta(hours=9),
            )
            t = time.perf_counter()
            n = populate(event, attendees, each)
            setup = time.perf_counter() - t
            event = Event.objects.select_related("organization").get(pk=event.pk)
            with CaptureQueriesContext(connection) as q:
                snapshot = dashboard_snapshot(event=event, now=NOW)
            assert snapshot["engagement"]["total"] == n
            result = {
                "attendees": attendees,
                "interactions": n,
                "setup_s": setup,
                "queries": len(q),
                "snapshot_s": timed(lambda: dashboard_snapshot(event=event, now=NOW)),
                "floor_s": timed(lambda: floor_scan(event)),
            }
            raise Rollback
    except Rollback:
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["1000x20", "10000x20"], help="ATTENDEESxPER_ATTENDEE")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("benchmarks/dashboard_snapshot.py: set DATABASE_URL to a PostgreSQL database")
    print(f"{'attendees':>10} {'interactions':>13} {'queries':>8} {'snapshot':>10} {'floor':>9} {'x floor':>8}")
    for size in args.sizes:
        attendees, each = (int(x) for x in size.split("x"))
        r = measure(attendees, each)
        print(
            f"{r['attendees']:>10,} {r['interactions']:>13,} {r['queries']:>8} "
            f"{r['snapshot_s'] * 1000:>8.1f}ms {r['floor_s'] * 1000:>7.1f}ms {r['snapshot_s'] / r['floor_s']:>8.1f}"
        )
    print(f"(median of {REPEATS} runs each; floor = one count(*) over the event's interactions)")


if __name__ == "__main__":
    main()
