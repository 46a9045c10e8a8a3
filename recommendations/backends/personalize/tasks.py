"""Thin Celery tasks: primitive ids in, re-fetch, call one service."""

import logging

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from django.utils import timezone

from events.models import Event
from recommendations.backends.personalize import services
from recommendations.backends.personalize.resources import is_transient
from recommendations.backends.personalize.runs import machine
from recommendations.backends.personalize.runs.context import DONE
from recommendations.backends.personalize.selectors import personalize_runs

logger = logging.getLogger(__name__)

FORWARD_MAX_RETRIES = 6


@shared_task(name="personalize.advance_run")
def advance_run(*, run_id: int) -> None:
    countdown = machine.personalize_run_advance(run_id=run_id)
    if countdown is None:
        return
    if advance_run.app.conf.task_always_eager:
        # Inline mode has no broker to hold a countdown: re-running now would spin on AWS. The
        # sweeper (`personalize.advance_due_runs`) picks the run up when its poll is due.
        logger.info("Personalize run %s waits %.0f s for the sweeper (eager mode).", run_id, countdown)
        return
    advance_run.apply_async(kwargs={"run_id": run_id}, countdown=countdown)


@shared_task(name="personalize.advance_due_runs")
def advance_due_runs() -> None:
    """Safety net for lost messages (broker restarted, eager mode): advance every run whose poll
    is due. The row lock and the poll time keep this from doubling a live polling chain."""
    now = timezone.now().isoformat()
    for run_id, steps in personalize_runs().filter(status__in=services.ACTIVE_STATUSES).values_list("pk", "steps"):
        state = next((s for s in steps if s.get("status") != DONE), None)
        if state is not None and state.get("poll_at", "") <= now:
            advance_run.delay(run_id=run_id)


@shared_task(name="personalize.retrain_if_due")
def retrain_if_due(*, event_id: int) -> None:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        logger.info("Event %s is gone; retrain schedule ignored.", event_id)
        return
    services.personalize_retrain_if_due(event=event)


@shared_task(name="personalize.batch_if_due")
def batch_if_due(*, event_id: int) -> None:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return
    services.personalize_batch_if_due(event=event)


@shared_task(name="personalize.teardown_if_due")
def teardown_if_due(*, event_id: int) -> None:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return
    services.personalize_teardown_if_due(event=event)


@shared_task(name="personalize.forward_interactions", bind=True, max_retries=FORWARD_MAX_RETRIES)
def forward_interactions(self, *, event_id: int, interaction_ids: list[int]) -> None:
    """Enqueued by `receivers.on_interactions_processing` once the outbox worker's claim of the rows
    commits. Retries only the interactions not yet sent, with exponential backoff and jitter."""
    result = services.forward_interactions(event_id=event_id, interaction_ids=interaction_ids)
    if result.error is None:
        return
    error: ClientError | BotoCoreError = result.error
    if not is_transient(error) or self.request.retries >= FORWARD_MAX_RETRIES:
        logger.warning("PutEvents gave up on %d interactions of event %s: %s", len(result.remaining), event_id, error)
        return
    raise self.retry(
        kwargs={"event_id": event_id, "interaction_ids": result.remaining},
        countdown=machine.backoff_seconds(self.request.retries + 1),
        exc=error,
    )
