"""Pushes to open dashboards, after commit: when a training run or model version changed (a run
advances step by step, and its progress bar should move), and when a batch of interactions
committed (`events.signals.interactions_processing`, sent in the worker that claims the batch,
inside its claiming transaction: a claim that rolls back pushes nothing). `dashboard_push` is the
one sender of `engagement.update`.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from events.signals import interactions_processing
from recommendations.models import ModelVersion, TrainingRun

from .services import dashboard_push, engagement_counts_push


@receiver(post_save, sender=TrainingRun)
@receiver(post_save, sender=ModelVersion)
def _training_changed(sender, instance, **kwargs):
    event_id = instance.event_id
    transaction.on_commit(lambda: dashboard_push(event_id=event_id, reason="training"))


@receiver(interactions_processing)
def _interactions_processing(sender, event_id: int, interaction_ids: list[int], **kwargs):
    transaction.on_commit(lambda: engagement_counts_push(event_id=event_id, interaction_ids=interaction_ids))
