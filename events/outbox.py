"""Writing interactions in bulk, and the outbox that guarantees downstream work runs once for each.

The database row is the record. Every path that writes interactions (REST batches, presence,
questionnaire hydration, CSV import) goes through `interactions_insert`, which:

1. inserts the batch set-based with `INSERT ... ON CONFLICT (event_id, client_event_id) DO NOTHING
   RETURNING`, so a client event id seen before (in an earlier request, or in a concurrent one that
   committed first) yields no second row, without a per-item query and without a race;
2. after the transaction commits, and once per batch rather than once per interaction, enqueues
   the `events.process_interactions` Celery task.

Processing (`interactions_process`) locks the still-unprocessed rows (`SELECT ... FOR UPDATE`),
sets `processed_at`, and sends `interactions_processing` inside that transaction, in a Celery
worker: the downstream work (forwarding to Personalize; the live model update and its pushes,
after that transaction commits) connects there, off the web processes. A receiver that
raises rolls the claim back, and the row is retried. Two workers can never both claim a row: a
worker that waited for another's lock re-checks `processed_at IS NULL` once it gets the row, and the
sweeper skips locked rows instead of waiting for them.

If the broker is down when a batch commits, publishing fails after the commit: the error is logged,
the request still succeeds, and the periodic sweeper (`interactions_sweep`) processes the rows later.
`events/` knows nothing of `recommendations/`: the signals (`events.signals`) are how it is told.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from .models import Interaction
from .signals import interactions_processing

logger = logging.getLogger(__name__)

PUBLISH_FAILED = "Could not enqueue processing of %d interactions of event %s (%s); the outbox sweeper will."

# Rows younger than this are left to the task their own batch enqueued; older unprocessed rows are
# presumed orphaned (broker down, worker crash) and swept.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_CHUNK = 500


class InteractionRow(NamedTuple):
    """One interaction ready to insert: ids already resolved, values already validated."""

    attendee_id: int
    room_id: int | None
    content_id: int | None
    interest_id: int | None
    type: str
    value: float | None
    occurred_at: datetime
    client_event_id: str
    qualifies: bool


_INSERT_SQL = """
INSERT INTO events_interaction
    (event_id, attendee_id, room_id, content_id, interest_id, type, value, occurred_at,
     client_event_id, source, qualifies, created_at, processed_at)
SELECT %s, u.a, u.r, u.c, u.i, u.t, u.v, u.o, u.k, %s, u.q, %s, NULL
FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::float8[],
            %b::timestamptz[], %b::text[], %b::bool[]) AS u(a, r, c, i, t, v, o, k, q)
ON CONFLICT (event_id, client_event_id) DO NOTHING
RETURNING id, client_event_id
"""


def interactions_insert(*, event_id: int, rows: Sequence[InteractionRow], source: str) -> dict[str, int]:
    """Insert `rows` for one event; return {client_event_id: new id} for the rows actually inserted.

    A client event id missing from the result was already recorded (a duplicate). Must run inside
    the caller's transaction (`transaction.atomic`); fan-out is scheduled for after its commit.
    The rows must have distinct client ids. PostgreSQL gets the one-statement path below; other
    databases (the embedded SQLite default) a portable one.
    """
    if not rows:
        return {}
    if connection.vendor == "postgresql":
        inserted = _insert_postgresql(event_id=event_id, rows=rows, source=source)
    else:
        inserted = _insert_portable(event_id=event_id, rows=rows, source=source)
    if inserted:
        ids = sorted(inserted.values())
        transaction.on_commit(lambda: announce_committed(event_id=event_id, interaction_ids=ids))
    return inserted


def _insert_postgresql(*, event_id: int, rows: Sequence[InteractionRow], source: str) -> dict[str, int]:
    connection.ensure_connection()
    # A plain psycopg cursor binds parameters on the server, and %b sends the arrays in binary:
    # Django's client-side binding would spell each array out as an escaped SQL literal.
    # Rows go in client-id order so that two batches sharing ids take their unique-index locks in
    # the same order, and wait for each other instead of deadlocking.
    rows = sorted(rows, key=lambda r: r.client_event_id)
    columns = list(zip(*rows, strict=True))
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_INSERT_SQL, [event_id, source, timezone.now(), *[list(c) for c in columns]], binary=True)
        return {key: pk for pk, key in cursor.fetchall()}


def _insert_portable(*, event_id: int, rows: Sequence[InteractionRow], source: str) -> dict[str, int]:
    """Insert what is not there yet, then read the new ids back. Race-free only where writers are
    serialised (SQLite takes a database-wide write lock); the unique constraint still forbids a
    second row anywhere."""
    keys = [r.client_event_id for r in rows]
    seen = set(
        Interaction.objects.filter(event_id=event_id, client_event_id__in=keys).values_list(
            "client_event_id", flat=True
        )
    )
    new = [r for r in rows if r.client_event_id not in seen]
    Interaction.objects.bulk_create(
        [Interaction(event_id=event_id, source=source, **r._asdict()) for r in new], batch_size=500
    )
    return dict(
        Interaction.objects.filter(event_id=event_id, client_event_id__in=[r.client_event_id for r in new]).values_list(
            "client_event_id", "pk"
        )
    )


def announce_committed(*, event_id: int, interaction_ids: list[int]) -> None:
    """After commit: enqueue processing. Never raises: the rows are committed, and a broker outage
    is covered by the sweeper."""
    # Imported here, not at module top: tasks import this module (tasks -> services, one way).
    from .tasks import process_interactions

    try:
        process_interactions.delay(interaction_ids=interaction_ids)
    except Exception as exc:  # kombu/redis raise many types when the broker is unreachable
        logger.warning(PUBLISH_FAILED, len(interaction_ids), event_id, exc)


def _claim_and_process(locking_queryset) -> int:
    """Lock the rows `locking_queryset` selects (still unprocessed), mark them processed and send
    `interactions_processing`, all in one transaction. PostgreSQL re-checks `processed_at IS NULL`
    on a row it had to wait for, so a row another worker claimed meanwhile is left out."""
    with transaction.atomic():
        claimed = list(locking_queryset.values_list("pk", "event_id"))
        if not claimed:
            return 0
        Interaction.objects.filter(pk__in=[pk for pk, _ in claimed]).update(processed_at=timezone.now())
        by_event: dict[int, list[int]] = defaultdict(list)
        for pk, event_id in claimed:
            by_event[event_id].append(pk)
        for event_id, ids in by_event.items():
            interactions_processing.send(sender=None, event_id=event_id, interaction_ids=sorted(ids))
    return len(claimed)


def interactions_process(*, interaction_ids: Sequence[int]) -> int:
    """Process the given interactions that are still unprocessed; return how many this call claimed.
    Ids already processed (by another worker or the sweeper) or deleted are skipped."""
    if not interaction_ids:
        return 0
    # Locks taken in id order: two workers handed overlapping batches cannot deadlock.
    return _claim_and_process(
        Interaction.objects.select_for_update()
        .filter(pk__in=list(interaction_ids), processed_at__isnull=True)
        .order_by("pk")
    )


def interactions_sweep(*, grace: timedelta = SWEEP_GRACE, chunk: int = SWEEP_CHUNK) -> int:
    """Process every committed-but-unprocessed interaction older than `grace`, in chunks; return the
    count. Safe to run on several workers at once: locked rows are skipped, not waited for."""
    total = 0
    while True:
        cutoff = timezone.now() - grace
        claimed = _claim_and_process(
            Interaction.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True, created_at__lte=cutoff)
            .order_by("created_at", "pk")[:chunk]
        )
        total += claimed
        if claimed < chunk:
            return total
