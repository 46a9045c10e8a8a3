"""Pushes to open dashboards, after commit, when a training run or model version changed (a run
advances step by step, and its progress bar should move). A committed batch of interactions is
pushed by the live-push receivers of `recommendations` (`engagement_push`), once per batch.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from recommendations.models import ModelVersion, TrainingRun

from .services import dashboard_push


@receiver(post_save, sender=TrainingRun)
@receiver(post_save, sender=ModelVersion)
def _training_changed(sender, instance, **kwargs):
    event_id = instance.event_id
    transaction.on_commit(lambda: dashboard_push(event_id=event_id, reason="training"))
