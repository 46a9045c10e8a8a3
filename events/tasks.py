"""Celery tasks of `events/`: thin, named, primitive arguments; each calls one service."""

import logging
import smtplib
from datetime import timedelta

from celery import shared_task

from . import notifications, outbox, presence, privacy, webhooks

logger = logging.getLogger(__name__)


@shared_task(name="events.process_interactions", ignore_result=True)
def process_interactions(*, interaction_ids: list[int]) -> int:
    """Process one committed batch. Rows already processed (by the sweeper or a twin delivery) or
    deleted since are skipped by the service, so a redelivered message does no harm."""
    return outbox.interactions_process(interaction_ids=interaction_ids)


@shared_task(name="events.sweep_interactions", ignore_result=True)
def sweep_interactions(*, grace_seconds: float | None = None) -> int:
    """Periodic: process committed interactions whose own task never ran (broker down, worker lost).
    `grace_seconds` overrides how old a row must be (`outbox.SWEEP_GRACE`), e.g. 0 to sweep all now."""
    grace = outbox.SWEEP_GRACE if grace_seconds is None else timedelta(seconds=grace_seconds)
    count = outbox.interactions_sweep(grace=grace)
    if count:
        logger.info("Outbox sweeper processed %d interactions", count)
    return count


@shared_task(name="events.close_stale_visits", ignore_result=True)
def close_stale_visits() -> int:
    """Periodic: close room visits whose heartbeats stopped or whose event's live window ended."""
    return presence.room_visits_close_stale()


@shared_task(name="events.purge_expired_events", ignore_result=True)
def purge_expired_events() -> list[str]:
    """Daily: delete personal data of events past their retention period, keeping aggregates."""
    purged = privacy.events_purge_expired()
    if purged:
        logger.info("Purged personal data of events past retention: %s", ", ".join(purged))
    return purged


@shared_task(name="events.send_webhook", ignore_result=True)
def send_webhook(*, delivery_id: int) -> str:
    """First attempt at a delivery, enqueued after the commit that created it."""
    return webhooks.webhook_send(delivery_id=delivery_id, first=True)


@shared_task(name="events.send_due_webhooks", ignore_result=True)
def send_due_webhooks() -> int:
    """Periodic: retries that are due, and first attempts whose task never ran."""
    return webhooks.webhooks_send_due()


# A mail server that refuses or times out: try again after 30 s, 1, 2, 4 ... min (at most an hour
# apart), six times (about an hour in all); a mail that still fails is logged by Celery and dropped.
MAIL_RETRY = {
    "autoretry_for": (smtplib.SMTPException, OSError),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "retry_jitter": False,
    "max_retries": 6,
}


@shared_task(name="events.send_meeting_email", ignore_result=True, **MAIL_RETRY)
def send_meeting_email(*, meeting_id: int, attendee_id: int, what: str) -> bool:
    """A meeting request or booking to one of its people, as the rows are when it runs."""
    message = notifications.meeting_mail(meeting_id=meeting_id, attendee_id=attendee_id, what=what)
    if message is None:
        return False
    message.send()
    return True
