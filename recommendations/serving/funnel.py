"""The suggestion funnel: shown -> opened -> requested -> accepted, per source and model version.

"Shown" is recorded by whoever displays a list (the API view and its fast path, the pages' first
paint, the widget's hello and live pushes), per item with the source that suggested it. The later
stages are attributed to the most recent "shown" of the same pair, so the dashboard can compare
sources: a connection request between two attendees who were never suggested to each other is not
part of the funnel and is not recorded.
"""

import json

from django.core.cache import cache

from events.models import Attendee
from matchmaking_site.redis_cache import redis_client
from recommendations.models import FunnelEvent, ModelVersion
from recommendations.serving.lists import Recommendations

Stage = FunnelEvent.Stage


SHOWN_BUFFER_KEY = "rec:funnel:shown"
FLUSH_BATCH = 5000


def funnel_record_shown(*, viewer: Attendee, result: Recommendations, only=None) -> int:
    """Record one "shown" per item of a served list (or per item whose attendee id is in `only`:
    the ones a live push or a reconnect adds to a list already on screen); return how many.
    Each item counts for the source that suggested it (a model's list filled by popularity shows
    both), the model version for the model's own items.

    Every surface records here: the REST API and its fast path, the attendee pages' first paint,
    the widget's hello on (re)connect and its live pushes (`recommendations.live.push`).

    This is a write on every read of suggestions. With Redis it is one RPUSH onto a buffer (one
    round trip, no PostgreSQL transaction, no WAL flush to wait for), and `funnel_flush_shown`,
    a periodic task, moves the buffer into `FunnelEvent` rows in bulk; the rows' `at` is then the
    flush time, up to a minute late, which the funnel's per-hour and per-day views can afford.
    Without Redis (the embedded default) the rows are written at once."""
    items = [item for item in result.items if only is None or item.attendee_id in only]
    if not items:
        return 0
    by_source: dict[str, list[int]] = {}
    for item in items:
        by_source.setdefault(item.source or result.source, []).append(item.attendee_id)
    entries = [
        [viewer.event_id, viewer.pk, source, result.model_version_id if source == result.source else None, ids]
        for source, ids in by_source.items()
    ]
    client = redis_client()
    if client is not None:
        client.rpush(cache.make_and_validate_key(SHOWN_BUFFER_KEY), *(json.dumps(entry) for entry in entries))
        return len(items)
    FunnelEvent.objects.bulk_create([row for entry in entries for row in _shown_rows(*entry)])
    return len(items)


def _shown_rows(event_id, viewer_id, source, model_version_id, ids) -> list[FunnelEvent]:
    return [
        FunnelEvent(
            event_id=event_id,
            viewer_id=viewer_id,
            suggested_id=pk,
            stage=Stage.SHOWN,
            source=source,
            model_version_id=model_version_id,
        )
        for pk in ids
    ]


def funnel_flush_shown() -> int:
    """Move buffered "shown" records into `FunnelEvent`; return the number of rows written.

    Takes the buffer in slices with an atomic LRANGE+LTRIM, so two flushers never write one
    entry twice. Rows of attendees or versions deleted meanwhile are dropped, not retried."""
    client = redis_client()
    if client is None:
        return 0
    key = cache.make_and_validate_key(SHOWN_BUFFER_KEY)
    written = 0
    while True:
        pipe = client.pipeline(transaction=True)
        pipe.lrange(key, 0, FLUSH_BATCH - 1)
        pipe.ltrim(key, FLUSH_BATCH, -1)
        entries, _ = pipe.execute()
        if not entries:
            return written
        rows = [row for entry in entries for row in _shown_rows(*json.loads(entry))]
        attendee_ids = {r.viewer_id for r in rows} | {r.suggested_id for r in rows}
        existing = set(Attendee.objects.filter(pk__in=attendee_ids).values_list("pk", flat=True))
        versions = {r.model_version_id for r in rows if r.model_version_id}
        existing_versions = set(ModelVersion.objects.filter(pk__in=versions).values_list("pk", flat=True))
        for row in rows:
            if row.model_version_id not in existing_versions:
                row.model_version_id = None
        rows = [r for r in rows if r.viewer_id in existing and r.suggested_id in existing]
        FunnelEvent.objects.bulk_create(rows, batch_size=1000)
        written += len(rows)


def funnel_record(*, viewer_id: int, suggested_id: int, stage: str) -> FunnelEvent | None:
    """Record a later stage for a pair, attributed to its last "shown"; None if never shown.

    Flushes the "shown" buffer first: an attendee opens a suggestion seconds after seeing it,
    long before the periodic flush. Later stages are rare next to "shown", so this is cheap."""
    funnel_flush_shown()
    shown = (
        FunnelEvent.objects.filter(viewer_id=viewer_id, suggested_id=suggested_id, stage=Stage.SHOWN)
        .order_by("-at", "-id")
        .values("event_id", "source", "model_version_id")
        .first()
    )
    if shown is None:
        return None
    return FunnelEvent.objects.create(viewer_id=viewer_id, suggested_id=suggested_id, stage=stage, **shown)


def funnel_record_meeting(*, requester_id: int, recipient_id: int, stage: str) -> FunnelEvent | None:
    """A meeting stage, attributed to the pair's last "shown" in either direction: the one who
    proposes the meeting need not be the one who was shown the other (Bob may propose a meeting to
    the Ada whose suggestion of him led to the connection)."""
    return funnel_record(viewer_id=requester_id, suggested_id=recipient_id, stage=stage) or funnel_record(
        viewer_id=recipient_id, suggested_id=requester_id, stage=stage
    )
