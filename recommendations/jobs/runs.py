"""Jobs as rows: every training and batch is a `TrainingRun` (status, steps, message) that the admin
shows; one run of a kind at a time per event (the row is created under the event's row lock); a
run whose worker died is failed once it is older than `stale_after()`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.models import Event
from recommendations.models import TrainingRun

logger = logging.getLogger(__name__)


ALREADY_RUNNING = "Another training run of this event is in progress (run {run_id})."


# A run left "running" this long is a crashed worker's, not a live one: it no longer blocks.
WORKER_LOST = (
    "No result after {minutes:.0f} min: the worker running it was lost (killed or restarted). "
    "The previously published version kept serving."
)


def stale_after() -> timedelta:
    """How long a train or batch run may stay "running" before it is presumed lost. A fit is one
    long computation with no heartbeat, so the bound is a duration, sized well above the slowest
    real fit (`RECOMMENDATION_STALE_RUN_SECONDS`)."""
    return timedelta(seconds=settings.RECOMMENDATION_STALE_RUN_SECONDS)


def training_runs_fail_stale(*, now=None) -> int:
    """Mark train and batch runs lost by their worker as failed, so the admin shows the truth and
    the next run may start. Publishing happens only at the end of a run, so a lost run never
    changed what serves. (Personalize runs are advanced by their own resumable state machine.)"""
    now = now or timezone.now()
    limit = stale_after()
    return TrainingRun.objects.filter(
        status=TrainingRun.Status.RUNNING,
        kind__in=[TrainingRun.Kind.TRAIN, TrainingRun.Kind.BATCH],
        started_at__lt=now - limit,
    ).update(
        status=TrainingRun.Status.FAILED,
        finished_at=now,
        message=WORKER_LOST.format(minutes=limit.total_seconds() / 60),
    )


# A backend may also take an explicit engine configuration (the `train --config` of the CLI) and
# `learn=False` (`train --fixed`: no per-event choice): `training_fingerprint(*, event, config,
# learn)` and `fit(*, event, config, learn)`; `run_training(config=..., learn=...)` passes them on.
# A backend without those keywords (Personalize) is only trained with its own.


def run_finish(run: TrainingRun, status: str, message: str, **fields) -> TrainingRun:
    run.status = status
    run.message = message
    run.finished_at = timezone.now()
    run.progress = 1.0
    for name, value in fields.items():
        setattr(run, name, value)
    run.save()
    return run


def run_step(run: TrainingRun, name: str, **info) -> None:
    run.steps = [*run.steps, {"name": name, "at": timezone.now().isoformat(), **info}]
    run.save(update_fields=["steps"])


def run_start(*, event: Event, kind: str, trigger: str) -> TrainingRun:
    """Create the run row, refusing (as a finished "skipped" row) if another one is running."""
    with transaction.atomic():
        Event.objects.select_for_update().get(pk=event.pk)
        running = (
            TrainingRun.objects.filter(
                event=event,
                kind=kind,
                status=TrainingRun.Status.RUNNING,
                started_at__gte=timezone.now() - stale_after(),
            )
            .order_by("-started_at")
            .first()
        )
        run = TrainingRun.objects.create(
            event=event,
            kind=kind,
            trigger=trigger,
            status=TrainingRun.Status.RUNNING,
            started_at=timezone.now(),
            attempts=1,
        )
    if running is not None:
        return run_finish(run, TrainingRun.Status.SKIPPED, ALREADY_RUNNING.format(run_id=running.pk))
    return run
