"""Reads of the Personalize backend."""

from django.db.models import Q, QuerySet

from recommendations.models import TrainingRun

Kind = TrainingRun.Kind


def personalize_runs() -> QuerySet[TrainingRun]:
    """Runs this app owns. Batch runs of the local model share the kind "batch"; Personalize's
    are told apart by their first step."""
    return TrainingRun.objects.filter(
        Q(kind__in=[Kind.PERSONALIZE, Kind.TEARDOWN]) | Q(kind=Kind.BATCH, steps__0__name="batch_input")
    ).select_related("event")
