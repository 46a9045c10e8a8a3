"""The dashboard's writes: the pushes that tell open dashboards to re-read, and the organizer's
buttons (retrain, batch, teardown), which start the existing jobs and say what happened.

Each action starts the same job the schedules start (`recommendations.jobs.tasks`, or a Personalize
run for events on that backend), so a click and a schedule can never disagree, and two clicks
make one run (the training and Personalize services refuse a second run in progress).
"""

import logging
from dataclasses import dataclass

from channels.layers import get_channel_layer
from django.utils import timezone

from events.enums import Backend
from events.groups import ENGAGEMENT_UPDATE, organizers_group
from events.models import Event, Interaction
from matchmaking_site.layer import group_send
from recommendations.backends import Unavailable, get_backend
from recommendations.backends.local.loaded import artifact_folder
from recommendations.backends.personalize import services as personalize
from recommendations.backends.personalize.models import RemoteResource
from recommendations.jobs import tasks
from recommendations.jobs.training import NOT_TRAINABLE, TrainableBackend, model_version_publish
from recommendations.live.sequences import dashboard_channel, sequence_current, sequence_next
from recommendations.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

QUEUED = "{what} queued: its progress shows under Training runs."
RUN_OUTCOME = "{what}: run {run_id} {status}. {message}"
FAILED = "{what} failed: {error}"
PUBLISH_FAILED = "Could not queue the {what}: the task broker is unreachable ({error})."
NOTHING_TO_TEAR_DOWN = "Nothing to tear down: this event has no Amazon Personalize resources."
PERSONALIZE_STARTED = "{what}: Amazon Personalize run {run_id} {status}; its steps show under Training runs."

Kind = TrainingRun.Kind


@dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    message: str
    run_id: int | None = None


def dashboard_seq(*, event_id: int) -> int:
    """The number of the last push to the event's dashboards (0 before any)."""
    return sequence_current(dashboard_channel(event_id))


def dashboard_push(*, event_id: int, reason: str, **info) -> None:
    """Tell the event's open dashboards that something moved: the one sender of
    `engagement.update` (payload in `events.groups`). A hint, never the data: the page re-reads its
    snapshot, and asks again if the snapshot's `seq` is older than the push's. A lost push costs one
    stale refresh, so a channel layer that is down is logged, not raised."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        seq = sequence_next(dashboard_channel(event_id))
        group_send(
            organizers_group(event_id),
            {"type": ENGAGEMENT_UPDATE, "event_id": event_id, "seq": seq, "reason": reason, **info},
        )
    except Exception as exc:  # redis/channels raise many types when the layer is unreachable
        logger.warning("dashboard push for event %s failed: %s", event_id, exc)


def engagement_counts_push(*, event_id: int, interaction_ids: list[int]) -> None:
    """After a batch of interactions committed: how many, and how many qualify."""
    qualifying = Interaction.objects.filter(pk__in=interaction_ids, qualifies=True).count()
    dashboard_push(
        event_id=event_id,
        reason="interactions",
        interactions=len(interaction_ids),
        qualifying=qualifying,
        at=timezone.now().isoformat(),
    )


def _outcome_of_task(*, what: str, task, event: Event) -> ActionOutcome:
    eager = task.app.conf.task_always_eager
    try:
        result = task.delay(event_id=event.pk, trigger="admin")
    except Exception as exc:
        if eager:  # inline mode propagates the job's own failure (its run row says failed too)
            return ActionOutcome(ok=False, message=FAILED.format(what=what, error=exc))
        return ActionOutcome(ok=False, message=PUBLISH_FAILED.format(what=what.lower(), error=exc))
    if not eager:
        return ActionOutcome(ok=True, message=QUEUED.format(what=what))
    # Inline mode (the embedded default, tests): the run is finished, so say how it ended.
    run = TrainingRun.objects.filter(pk=result.result).first()
    if run is None:
        return ActionOutcome(ok=False, message=f"{what}: the event is gone.")
    ok = run.status not in (TrainingRun.Status.FAILED,)
    message = RUN_OUTCOME.format(what=what, run_id=run.pk, status=run.get_status_display().lower(), message=run.message)
    return ActionOutcome(ok=ok, message=message.strip(), run_id=run.pk)


def _personalize_start(*, what: str, event: Event, kind: str) -> ActionOutcome:
    try:
        run = personalize.personalize_run_start(event=event, kind=kind, trigger="admin")
    except personalize.NotConfigured as exc:
        return ActionOutcome(ok=False, message=str(exc))
    status = run.get_status_display().lower()
    return ActionOutcome(
        ok=True, message=PERSONALIZE_STARTED.format(what=what, run_id=run.pk, status=status), run_id=run.pk
    )


def dashboard_retrain(*, event: Event) -> ActionOutcome:
    if event.backend == Backend.PERSONALIZE:
        return _personalize_start(what="Retrain", event=event, kind=Kind.PERSONALIZE)
    if not isinstance(get_backend(event.backend), TrainableBackend):
        return ActionOutcome(ok=False, message=NOT_TRAINABLE.format(backend=event.backend))
    return _outcome_of_task(what="Retrain", task=tasks.train_event, event=event)


def dashboard_batch(*, event: Event) -> ActionOutcome:
    if event.backend == Backend.PERSONALIZE:
        return _personalize_start(what="Batch", event=event, kind=Kind.BATCH)
    return _outcome_of_task(what="Batch", task=tasks.batch_event, event=event)


def dashboard_teardown(*, event: Event) -> ActionOutcome:
    """Delete the event's remote (Amazon Personalize) resources; the local model has none."""
    if not RemoteResource.objects.filter(event=event).exists():
        return ActionOutcome(ok=False, message=NOTHING_TO_TEAR_DOWN)
    return _personalize_start(what="Teardown", event=event, kind=Kind.TEARDOWN)


ACTIONS = {"retrain": dashboard_retrain, "batch": dashboard_batch, "teardown": dashboard_teardown}

NO_SUCH_VERSION = "This event has no model version {number}."
ALREADY_SERVING = "v{number} is already serving."
NOT_PUBLISHABLE = (
    "v{number} was trained by {backend}, and the event now uses {current}: only versions of its own backend can serve."
)
REMOTE_VERSION = (
    "v{number} is an Amazon Personalize solution version: its campaign decides what serves. Retrain to change it."
)
ARTIFACT_GONE = "v{number} cannot serve: {error}"
PUBLISHED_BY_HAND = "v{number} now serves{replaced}. Every list comes from it from the next read on."


def dashboard_publish(*, event: Event, number: int) -> ActionOutcome:
    """Publish a kept version, or roll back to an earlier one (local model versions only: their
    artifact is all they need; a Personalize version serves through its remote campaign)."""
    version = ModelVersion.objects.filter(event=event, number=number).first()
    if version is None:
        return ActionOutcome(ok=False, message=NO_SUCH_VERSION.format(number=number))
    if version.status == ModelVersion.Status.PUBLISHED:
        return ActionOutcome(ok=True, message=ALREADY_SERVING.format(number=number))
    if version.backend == Backend.PERSONALIZE:
        return ActionOutcome(ok=False, message=REMOTE_VERSION.format(number=number))
    if version.backend != event.backend:
        message = NOT_PUBLISHABLE.format(number=number, backend=version.backend, current=event.backend)
        return ActionOutcome(ok=False, message=message)
    try:
        artifact_folder(version)
    except Unavailable as exc:
        return ActionOutcome(ok=False, message=ARTIFACT_GONE.format(number=number, error=exc))
    replaced = model_version_publish(version=version)
    dashboard_push(event_id=event.pk, reason="published", number=number)
    was = f" in place of v{replaced.number}" if replaced is not None else ""
    return ActionOutcome(ok=True, message=PUBLISHED_BY_HAND.format(number=number, replaced=was))
