"""Pushes to open dashboards, after commit: a batch of interactions landed, or a training run or
model version changed (a run advances step by step, and its progress bar should move).

The ingestion side is meant to push `engagement.update` itself after each committed batch; until
it does, this receiver of `interactions_committed` (sent after commit, once per batch) does.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from events.outbox import interactions_committed
from recommendations.models import ModelVersion, TrainingRun

from .services import dashboard_push


@receiver(interactions_committed)
def _interactions_committed(sender, *, event_id: int, interaction_ids: list[int], **kwargs):
    dashboard_push(event_id=event_id, reason="interactions", count=len(interaction_ids))


@receiver(post_save, sender=TrainingRun)
@receiver(post_save, sender=ModelVersion)
def _training_changed(sender, instance, **kwargs):
    event_id = instance.event_id
    transaction.on_commit(lambda: dashboard_push(event_id=event_id, reason="training"))
