"""How fast, and in how much memory, a Personalize training export is written.

Builds a throwaway event (ATTENDEES attendees, CONTEXTS rooms, INTERACTIONS qualifying room visits)
in the configured database, then times `mapping.export_build` (pseudonymous ids, the interactions
CSV and the items CSV, spooled to disk past 16 MB) against the physical limit of reading the same
rows: PostgreSQL's own `COPY (SELECT ...) TO STDOUT` of the five source columns. Peak Python memory
of the export is measured with tracemalloc. The event is deleted at the end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mm_personalize \\
        .venv/bin/python benchmarks/personalize_export.py --interactions 200000
"""

import argparse
import os
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from events.models import Attendee, Event, Interaction, Organization, Room  # noqa: E402
from recommendations.backends.personalize import mapping  # noqa: E402


def build(n_attendees: int, n_contexts: int, n_interactions: int) -> Event:
    org, _ = Organization.objects.get_or_create(slug="bench-org", defaults={"name": "Bench"})
    event = Event.objects.create(organization=org, slug=f"bench-export-{os.getpid()}", name="Bench export")
    Attendee.objects.bulk_create(
        [Attendee(event=event, external_id=f"a{i}", display_name=f"A {i}") for i in range(n_attendees)],
        batch_size=5000,
    )
    Room.objects.bulk_create(
        [Room(event=event, external_id=f"r{i}", name=f"R {i}") for i in range(n_contexts)], batch_size=5000
    )
    attendees = list(Attendee.objects.filter(event=event).values_list("pk", flat=True))
    rooms = list(Room.objects.filter(event=event).values_list("pk", flat=True))
    rng = random.Random(7)
    t0 = datetime(2026, 6, 4, 9, tzinfo=UTC)
    batch = []
    for i in range(n_interactions):
        batch.append(
            Interaction(
                event=event,
                attendee_id=rng.choice(attendees),
                room_id=rng.choice(rooms),
                type="join_room",
                value=float(rng.randint(60, 3600)),
                occurred_at=t0 + timedelta(seconds=i),
                client_event_id=f"c{i}",
                qualifies=True,
            )
        )
        if len(batch) == 10_000:
            Interaction.objects.bulk_create(batch)
            batch = []
    Interaction.objects.bulk_create(batch)
    return event


def copy_seconds(event: Event) -> tuple[float, int]:
    sql = (
        "COPY (SELECT room_id, attendee_id, occurred_at, type, value FROM events_interaction "
        f"WHERE event_id = {int(event.pk)} AND qualifies ORDER BY occurred_at, id) TO STDOUT"
    )
    started = time.perf_counter()
    size = 0
    with connection.cursor() as cursor, cursor.connection.cursor().copy(sql) as copy:
        for chunk in copy:
            size += len(chunk)
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attendees", type=int, default=20_000)
    parser.add_argument("--contexts", type=int, default=2_000)
    parser.add_argument("--interactions", type=int, default=200_000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("error: this benchmark needs PostgreSQL (DATABASE_URL)")
    event = build(args.attendees, args.contexts, args.interactions)
    try:
        started = time.perf_counter()
        export = mapping.export_build(event=event)
        export_s = time.perf_counter() - started
        size = len(export.interactions.read())
        export.close()
        # Again: tokens exist now, as on every retrain after the first.
        started = time.perf_counter()
        mapping.export_build(event=event).close()
        again_s = time.perf_counter() - started
        # Memory on its own run: tracemalloc slows Python down several times.
        tracemalloc.start()
        mapping.export_build(event=event).close()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        copy_s, copy_bytes = copy_seconds(event)
        n = export.n_interactions
        print(f"interactions: {n}, attendees: {export.n_items}, contexts: {args.contexts}")
        print(f"export (first, creates tokens): {export_s:.2f} s, {n / export_s:,.0f} rows/s, CSV {size / 1e6:.1f} MB")
        print(f"export (retrain, tokens exist): {again_s:.2f} s, {n / again_s:,.0f} rows/s")
        print(f"peak Python memory during the export: {peak / 1e6:.1f} MB ({peak / n:.0f} bytes per row)")
        print(
            f"PostgreSQL COPY of the same rows (limit): {copy_s:.2f} s, {n / copy_s:,.0f} rows/s, "
            f"{copy_bytes / 1e6:.1f} MB"
        )
        print(f"export / COPY: {again_s / copy_s:.1f}x")
    finally:
        event.delete()


if __name__ == "__main__":
    main()
