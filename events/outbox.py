"""Writing interactions in bulk, and the outbox that guarantees downstream work runs once for each.

The database row is the record. Every path that writes interactions (REST batches, presence,
questionnaire hydration, CSV import) goes through `interactions_insert`, which:

1. inserts the batch set-based with `INSERT ... ON CONFLICT (event_id, client_event_id) DO NOTHING
   RETURNING`, so a client event id seen before (in an earlier request, or in a concurrent one that
   committed first) yields no second row, without a per-item query and without a race;
2. after the transaction commits, and once per batch rather than once per interaction, sends the
   `interactions_committed` signal in-process (a hint: live pushes, counters) and enqueues the
   `events.process_interactions` Celery task.

Processing (`interactions_process`) claims rows with `UPDATE ... SET processed_at = now() WHERE
processed_at IS NULL ... RETURNING`, and sends `interactions_processing` inside that transaction:
the durable downstream work (model update, forwarding to Personalize) connects there. A receiver that
raises rolls the claim back, and the row is retried. Two workers can never both claim a row: the
UPDATE re-checks `processed_at IS NULL` after waiting for the other's lock, and the sweeper skips
locked rows instead of waiting for them.

If the broker is down when a batch commits, publishing fails after the commit: the error is logged,
the request still succeeds, and the periodic sweeper (`interactions_sweep`) processes the rows later.
`events/` knows nothing of `recommendations/`: the signals are how it is told.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import django.dispatch
from django.db import connection, transaction
from django.utils import timezone

from .models import Interaction

logger = logging.getLogger(__name__)

# Sent after commit, in the process that wrote the rows, once per batch. Receivers get
# `event_id` (int) and `interaction_ids` (list[int]). Sent robustly: a failing receiver is logged
# and cannot fail the request whose rows are already committed.
interactions_committed = django.dispatch.Signal()

# Sent by the outbox worker inside the transaction that marks the rows processed, once per claimed
# batch per event. Receivers get `event_id` and `interaction_ids`. A receiver that raises rolls the
# mark back, and the sweeper retries the rows later: durable downstream work belongs here.
interactions_processing = django.dispatch.Signal()

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
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::float8[],
            %s::timestamptz[], %s::text[], %s::bool[]) AS u(a, r, c, i, t, v, o, k, q)
ON CONFLICT (event_id, client_event_id) DO NOTHING
RETURNING id, client_event_id
"""


def interactions_insert(*, event_id: int, rows: Sequence[InteractionRow], source: str) -> dict[str, int]:
    """Insert `rows` for one event; return {client_event_id: new id} for the rows actually inserted.

    A client event id missing from the result was already recorded (a duplicate). Must run inside
    the caller's transaction (`transaction.atomic`); fan-out is scheduled for after its commit.
    PostgreSQL only (the ingestion path is built for it); the rows must have distinct client ids.
    """
    if not rows:
        return {}
    if connection.vendor != "postgresql":
        inserted = _insert_portable(event_id=event_id, rows=rows, source=source)
        if inserted:
            ids = sorted(inserted.values())
            transaction.on_commit(lambda: announce_committed(event_id=event_id, interaction_ids=ids))
        return inserted
    columns = list(zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, [event_id, source, timezone.now(), *[list(c) for c in columns]])
        inserted = {key: pk for pk, key in cursor.fetchall()}
    if inserted:
        ids = sorted(inserted.values())
        transaction.on_commit(lambda: announce_committed(event_id=event_id, interaction_ids=ids))
    return inserted


def _insert_portable(*, event_id: int, rows: Sequence[InteractionRow], source: str) -> dict[str, int]:
    """Row by row, for the embedded demo on SQLite (one writer at a time, so check-then-insert
    cannot race there). PostgreSQL takes the set-based path above."""
    seen = set(
        Interaction.objects.filter(
            event_id=event_id, client_event_id__in=[r.client_event_id for r in rows]
        ).values_list("client_event_id", flat=True)
    )
    inserted = {}
    for row in rows:
        if row.client_event_id in seen:
            continue
        obj = Interaction.objects.create(event_id=event_id, source=source, **row._asdict())
        inserted[row.client_event_id] = obj.pk
    return inserted


def announce_committed(*, event_id: int, interaction_ids: list[int]) -> None:
    """After commit: tell in-process listeners, then enqueue processing. Never raises: the rows are
    committed, and a broker outage is covered by the sweeper."""
    for receiver, result in interactions_committed.send_robust(
        sender=None, event_id=event_id, interaction_ids=interaction_ids
    ):
        if isinstance(result, Exception):
            logger.error("interactions_committed receiver %r failed", receiver, exc_info=result)
    # Imported here, not at module top: tasks import this module (tasks -> services, one way).
    from .tasks import process_interactions

    try:
        process_interactions.delay(interaction_ids=interaction_ids)
    except Exception as exc:  # kombu/redis raise many types when the broker is unreachable
        logger.warning(PUBLISH_FAILED, len(interaction_ids), event_id, exc)


def _claim_and_process(claim_sql: str, params: list) -> int:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(claim_sql, params)
            claimed = cursor.fetchall()
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
    if connection.vendor != "postgresql":  # the embedded demo's SQLite has no arrays
        marks = ", ".join(["%s"] * len(interaction_ids))
        return _claim_and_process(
            f"UPDATE events_interaction SET processed_at = %s WHERE id IN ({marks}) AND processed_at IS NULL "
            "RETURNING id, event_id",
            [timezone.now(), *interaction_ids],
        )
    return _claim_and_process(
        "UPDATE events_interaction SET processed_at = %s WHERE id = ANY(%s) AND processed_at IS NULL "
        "RETURNING id, event_id",
        [timezone.now(), list(interaction_ids)],
    )


def interactions_sweep(*, grace: timedelta = SWEEP_GRACE, chunk: int = SWEEP_CHUNK) -> int:
    """Process every committed-but-unprocessed interaction older than `grace`, in chunks; return the
    count. Safe to run on several workers at once: locked rows are skipped, not waited for."""
    total = 0
    while True:
        now = timezone.now()
        claimed = _claim_and_process(
            "UPDATE events_interaction SET processed_at = %s WHERE id IN ("
            "  SELECT id FROM events_interaction WHERE processed_at IS NULL AND created_at <= %s"
            "  ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED"
            ") AND processed_at IS NULL RETURNING id, event_id",
            [now, now - grace, chunk],
        )
        total += claimed
        if claimed < chunk:
            return total
