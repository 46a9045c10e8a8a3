"""The throw-away event the ingestion benchmarks (`ingest.py`, `import_csv.py`) write into.
Import after `django.setup()`."""

from datetime import UTC, datetime, timedelta

from django.db import connection

from events.models import Attendee, Content, Event, InterestTag, Organization, Room

LIVE_START = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)


def bench_event(slug: str, *, attendees: int, rooms: int, contents: int, tags: int = 0) -> Event:
    """An event of the bench organization with `attendees` (a0, a1, ...), `rooms` (r0, ...),
    `contents` (c0, ...) and `tags` (t0, ...), live for nine hours from LIVE_START."""
    org, _ = Organization.objects.get_or_create(slug="bench-org", defaults={"name": "Bench"})
    event = Event.objects.create(
        organization=org,
        slug=slug,
        name=slug,
        live_starts_at=LIVE_START,
        live_ends_at=LIVE_START + timedelta(hours=9),
        on_demand_ends_at=LIVE_START + timedelta(days=30),
    )
    Attendee.objects.bulk_create(
        [Attendee(event=event, external_id=f"a{i}", display_name=f"A {i}") for i in range(attendees)]
    )
    Room.objects.bulk_create([Room(event=event, external_id=f"r{i}", name=f"R {i}") for i in range(rooms)])
    Content.objects.bulk_create([Content(event=event, external_id=f"c{i}", title=f"C {i}") for i in range(contents)])
    InterestTag.objects.bulk_create([InterestTag(event=event, slug=f"t{i}", label=f"T {i}") for i in range(tags)])
    return event


def drop_event(event: Event) -> None:
    """Delete the bench rows in SQL: the ORM's cascade would load every interaction id first."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_roomvisit WHERE event_id = %s", [event.pk])
        cursor.execute("DELETE FROM events_interaction WHERE event_id = %s", [event.pk])
    Event.objects.filter(pk=event.pk).delete()
