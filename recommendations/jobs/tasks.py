"""Celery tasks: thin. Primitive ids in, re-fetch the row (log and return if it is gone), call one
service. Scheduled per event by `recommendations.jobs.schedules`."""

import logging

from celery import shared_task
from celery.signals import worker_process_init

from events.enums import Phase
from events.models import Event
from events.tasks import MAIL_RETRY
from recommendations.digest import digest_mail, digest_recipients
from recommendations.engine import warm_up
from recommendations.jobs.batch import batch_run
from recommendations.jobs.phases import event_refresh_phase
from recommendations.jobs.runs import training_runs_fail_stale
from recommendations.jobs.training import run_training
from recommendations.serving.funnel import funnel_flush_shown

logger = logging.getLogger(__name__)


@worker_process_init.connect
def warm_up_engine(**kwargs) -> None:
    """Load the engine's kernels when a worker process starts, not on the first live interaction
    it handles (`engine.warm_up`)."""
    warm_up()


def _event(event_id: int) -> Event | None:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        logger.info("event %s is gone; nothing to do", event_id)
    return event


@shared_task(name="recommendations.refresh_event_phase")
def refresh_event_phase(*, event_id: int) -> list[str]:
    event = _event(event_id)
    if event is None:
        return []
    return [t.to_phase for t in event_refresh_phase(event=event)]


@shared_task(name="recommendations.refresh_phases")
def refresh_phases() -> int:
    """Every open event at once, for deployments that prefer one beat entry to one per event.
    Also the reaper of train and batch runs whose worker was lost."""
    failed = training_runs_fail_stale()
    if failed:
        logger.warning("marked %d lost training runs as failed", failed)
    n = 0
    for event_id in Event.objects.exclude(phase=Phase.CLOSED).values_list("pk", flat=True):
        refresh_event_phase.delay(event_id=event_id)
        n += 1
    return n


@shared_task(name="recommendations.train_event")
def train_event(*, event_id: int, trigger: str = "schedule") -> int | None:
    event = _event(event_id)
    if event is None:
        return None
    return run_training(event=event, trigger=trigger).pk


@shared_task(name="recommendations.batch_event")
def batch_event(*, event_id: int, trigger: str = "schedule") -> int | None:
    event = _event(event_id)
    if event is None:
        return None
    return batch_run(event=event, trigger=trigger).pk


@shared_task(name="recommendations.flush_funnel")
def flush_funnel() -> int:
    return funnel_flush_shown()


@shared_task(name="recommendations.send_digest", ignore_result=True, **MAIL_RETRY)
def send_digest(*, attendee_id: int) -> bool:
    """One attendee's "people to meet" mail, with the list as it is when it runs."""
    message = digest_mail(attendee_id=attendee_id)
    if message is None:
        return False
    message.send()
    return True


@shared_task(name="recommendations.send_digests", ignore_result=True)
def send_digests() -> int:
    """Daily: a digest task for each attendee who gets one today (`recommendations.digest`)."""
    ids = digest_recipients()
    for attendee_id in ids:
        send_digest.delay(attendee_id=attendee_id)
    return len(ids)
