"""Thin Celery tasks of the dashboard.

`train_local_now` exists only because, on this branch, the local model's backend does not yet
implement `TrainableBackend` (fit/training_fingerprint), so `recommendations.train_event` ends
"failed: cannot be trained" for it; the local model is trained by `local.train_event_now`, as
`manage.py train` does. Once the backend implements the seam, the retrain button goes through
`recommendations.train_event` for every backend and this task can go.
"""

import logging

from celery import shared_task

from events.models import Event
from recommendations.local import train_event_now

logger = logging.getLogger(__name__)


@shared_task(name="dashboard.train_local_now")
def train_local_now(*, event_id: int, trigger: str = "admin") -> int | None:
    """Return the id of the training run it recorded."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        logger.info("event %s is gone; nothing to train", event_id)
        return None
    version = train_event_now(event=event, trigger=trigger)
    run = version.runs.order_by("-created_at", "-id").first()
    return run.pk if run else None
