"""The daily batch for the on-demand phase: every attendee's list computed by the live sources
through the one serving function, the exposure cap applied over the whole table at once, written
to `BatchRecommendation`, as a job-as-a-row (`recommendations.jobs.runs`).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from events.enums import Phase
from events.models import Attendee, Event
from recommendations.jobs.runs import run_finish, run_start
from recommendations.models import BatchRecommendation, TrainingRun
from recommendations.serving.cache import event_cache_invalidate
from recommendations.serving.exposure import EXPOSURE_LIST_SIZE, apply_exposure_cap
from recommendations.serving.lists import MAX_RESULTS, recommendations_for

logger = logging.getLogger(__name__)


BATCH_DONE = "{n:,} batch lists written from sources {sources}."


def batch_run(*, event: Event, trigger: str = "manual") -> TrainingRun:
    """Fill the batch table: one list per attendee who receives suggestions, computed by the live
    sources through `recommendations_for` (uncached, so every list is fresh), then the exposure
    cap applied over the whole table at once, which is fairer than the online, one-list-at-a-time
    cap. Ends by bumping the event's cache stamp so on-demand readers see the new table."""
    run = run_start(event=event, kind=TrainingRun.Kind.BATCH, trigger=trigger)
    if run.status != TrainingRun.Status.RUNNING:
        return run
    try:
        viewers = list(
            Attendee.objects.filter(event=event, consent_receive_recommendations=True).select_related("event")
        )
        results = {}
        for viewer in viewers:
            results[viewer.pk] = recommendations_for(
                attendee=viewer,
                num_results=MAX_RESULTS,
                phase=Phase.LIVE,
                record_exposure=False,
                boost_presence=False,
            )
        ranked = {pk: [item.attendee_id for item in result.items] for pk, result in results.items()}
        # The cap governs the top of each list (what is shown); the rest follows in rank order.
        top = apply_exposure_cap(ranked, event.exposure_cap_share, k=EXPOSURE_LIST_SIZE)
        capped = {pk: top[pk] + [aid for aid in ranked[pk] if aid not in set(top[pk])] for pk in ranked}
        now = timezone.now()
        rows = []
        for pk, result in results.items():
            by_id = {item.attendee_id: item for item in result.items}
            rows.append(
                BatchRecommendation(
                    event=event,
                    attendee_id=pk,
                    model_version_id=result.model_version_id,
                    source=result.source,
                    items=[
                        {"attendee_id": aid, "score": by_id[aid].score, "reasons": by_id[aid].reasons}
                        for aid in capped[pk]
                    ],
                    computed_at=now,
                )
            )
        with transaction.atomic():
            BatchRecommendation.objects.bulk_create(
                rows,
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["attendee"],
                update_fields=["model_version", "source", "items", "computed_at"],
            )
            event_cache_invalidate(event_id=event.pk)
        sources = sorted({result.source for result in results.values() if result.source})
        return run_finish(run, TrainingRun.Status.SUCCEEDED, BATCH_DONE.format(n=len(rows), sources=", ".join(sources)))
    except Exception as exc:
        logger.exception("batch run %s of event %s failed", run.pk, event.pk)
        return run_finish(run, TrainingRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
