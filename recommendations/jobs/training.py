"""Training orchestration: when to train, whether the result is new, whether it may serve.

The seam with the model code is the backend itself. A backend that can be trained implements,
beside `candidates`, the two methods of `TrainableBackend`:

    training_fingerprint(*, event) -> str      cheap hash of everything the fit would read (qualifying
                                               interactions with training consent, weights,
                                               thresholds, the backend's own config). Same inputs,
                                               same fingerprint.
    fit(*, event) -> FitResult                 train, store the artifact, evaluate offline on a
                                               holdout, and evaluate the rules engine on the same
                                               holdout (`baseline_metrics`), so the gate compares
                                               like with like.

The model code (`recommendations/backends/local/`, the Personalize backend) owns *how* to fit; this
module owns everything around it, identically for every backend:

1. one run at a time per event (a run row created under the event's row lock);
2. a scheduled run is skipped unless `settings.RECOMMENDATION_RETRAIN_MIN_NEW_INTERACTIONS`
   qualifying interactions arrived since the last version (manual runs always go ahead);
3. idempotence: if a version with the same input fingerprint exists, the run ends "unchanged"
   and points at it; no new version;
4. the publish gate: the new version serves only if its `settings.RECOMMENDATION_GATE_METRIC` is
   at least the serving version's, or, with no serving version, the rules engine's on the same
   holdout; otherwise it is kept, with the reason in `not_published_reason`;
5. every run is a `TrainingRun` row (status, steps, message) that the admin shows.

The daily batch for the on-demand phase (`batch_run`) lives here too: it is the same kind of
job-as-a-row, and it fills `BatchRecommendation` through the one serving function.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from events.enums import Phase
from events.models import Attendee, Event, Interaction
from recommendations.backends import get_backend
from recommendations.models import BatchRecommendation, ModelVersion, TrainingRun
from recommendations.serving.cache import event_cache_invalidate
from recommendations.serving.exposure import EXPOSURE_LIST_SIZE, apply_exposure_cap
from recommendations.serving.lists import MAX_RESULTS, recommendations_for

logger = logging.getLogger(__name__)

NOT_TRAINABLE = "Backend {backend!r} cannot be trained (it has no fit/training_fingerprint)."
ALREADY_RUNNING = "Another training run of this event is in progress (run {run_id})."
TOO_FEW_NEW = "{new} new qualifying interactions since v{number}; a scheduled retrain needs {needed}."
UNCHANGED = "Same inputs as v{number} (fingerprint {fingerprint}); no new version."
NO_METRIC = "The fit reported no {metric} (serving v{number} has one); kept, not published."
BELOW_SERVING = "{metric} {new:.4f} < serving v{number}'s {old:.4f}"
BELOW_BASELINE = "{metric} {new:.4f} < the {baseline}'s {old:.4f}"
PUBLISHED = "Published v{number}: {metric} {new} (was {reference})"
KEPT = "Kept v{number}, not published: {reason}"
BATCH_DONE = "{n:,} batch lists written from sources {sources}."

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


@dataclass(frozen=True)
class FitResult:
    metrics: dict[str, float]
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    artifact: str = ""
    artifact_bytes: int = 0
    n_attendees: int = 0
    n_contexts: int = 0
    n_interactions: int = 0
    config: dict = field(default_factory=dict)
    remote_arn: str = ""
    baseline_name: str = "rules engine"  # what `baseline_metrics` scored, for the gate's message
    # What the first version is measured against when there are no baseline metrics, for the
    # run's message (the local model compares itself with the obvious lists while fitting).
    reference: str = ""


@runtime_checkable
class TrainableBackend(Protocol):
    def training_fingerprint(self, *, event: Event) -> str: ...

    def fit(self, *, event: Event) -> FitResult: ...


# A backend may also take an explicit engine configuration (the `train --config` of the CLI) and
# `learn=False` (`train --fixed`: no per-event choice): `training_fingerprint(*, event, config,
# learn)` and `fit(*, event, config, learn)`; `run_training(config=..., learn=...)` passes them on.
# A backend without those keywords (Personalize) is only trained with its own.


def _finish(run: TrainingRun, status: str, message: str, **fields) -> TrainingRun:
    run.status = status
    run.message = message
    run.finished_at = timezone.now()
    run.progress = 1.0
    for name, value in fields.items():
        setattr(run, name, value)
    run.save()
    return run


def _step(run: TrainingRun, name: str, **info) -> None:
    run.steps = [*run.steps, {"name": name, "at": timezone.now().isoformat(), **info}]
    run.save(update_fields=["steps"])


def _start(*, event: Event, kind: str, trigger: str) -> TrainingRun:
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
        return _finish(run, TrainingRun.Status.SKIPPED, ALREADY_RUNNING.format(run_id=running.pk))
    return run


def run_training(*, event: Event, trigger: str = "manual", config=None, learn: bool = True) -> TrainingRun:
    """Train `event`'s backend once, idempotently, and publish the result if it passes the gate.
    The one path for every trigger: the schedule, the admin, the API and `manage.py train` (which
    may pass an explicit engine `config`)."""
    run = _start(event=event, kind=TrainingRun.Kind.TRAIN, trigger=trigger)
    if run.status != TrainingRun.Status.RUNNING:
        return run
    try:
        return _train(run=run, event=event, trigger=trigger, config=config, learn=learn)
    except Exception as exc:
        logger.exception("training run %s of event %s failed", run.pk, event.pk)
        return _finish(run, TrainingRun.Status.FAILED, f"{type(exc).__name__}: {exc}")


def _train(*, run: TrainingRun, event: Event, trigger: str, config=None, learn: bool = True) -> TrainingRun:
    backend = get_backend(event.backend)
    if not isinstance(backend, TrainableBackend):
        return _finish(run, TrainingRun.Status.FAILED, NOT_TRAINABLE.format(backend=str(event.backend)))

    last = ModelVersion.objects.filter(event=event).order_by("-number").first()
    if trigger == "schedule" and last is not None:
        needed = settings.RECOMMENDATION_RETRAIN_MIN_NEW_INTERACTIONS
        new = Interaction.objects.filter(event=event, qualifies=True, created_at__gt=last.created_at).count()
        if new < needed:
            return _finish(
                run, TrainingRun.Status.SKIPPED, TOO_FEW_NEW.format(new=new, number=last.number, needed=needed)
            )

    explicit = ({} if config is None else {"config": config}) | ({} if learn else {"learn": False})
    fingerprint = backend.training_fingerprint(event=event, **explicit)
    _step(run, "fingerprint", fingerprint=fingerprint)
    same = ModelVersion.objects.filter(event=event, input_fingerprint=fingerprint).order_by("-number").first()
    if same is not None:
        return _finish(
            run,
            TrainingRun.Status.UNCHANGED,
            UNCHANGED.format(number=same.number, fingerprint=fingerprint[:12]),
            model_version=same,
        )

    started = time.perf_counter()
    fit = backend.fit(event=event, **explicit)
    seconds = time.perf_counter() - started
    _step(run, "fit", seconds=round(seconds, 3), metrics=fit.metrics)

    version, message = _version_create_and_gate(event=event, fingerprint=fingerprint, fit=fit, seconds=seconds)
    _step(run, "gate", status=version.status)
    return _finish(run, TrainingRun.Status.SUCCEEDED, message, model_version=version)


@transaction.atomic
def _version_create_and_gate(
    *, event: Event, fingerprint: str, fit: FitResult, seconds: float
) -> tuple[ModelVersion, str]:
    # The event row lock serialises version numbers and the single published version.
    Event.objects.select_for_update().get(pk=event.pk)
    number = (ModelVersion.objects.filter(event=event).aggregate(n=Max("number"))["n"] or 0) + 1
    metric = settings.RECOMMENDATION_GATE_METRIC
    serving = ModelVersion.objects.filter(event=event, status=ModelVersion.Status.PUBLISHED).first()
    new = fit.metrics.get(metric)
    if new is None and serving is not None and serving.metrics.get(metric) is not None:
        reason = NO_METRIC.format(metric=metric, number=serving.number)
    elif new is None:
        # An event too small to hold anything out: nothing to compare, and a model that cannot
        # be measured still knows more than no model (the CLI contract trains to serve).
        reason = ""
        reference = "nothing to compare: no holdout"
    elif serving is not None and serving.metrics.get(metric) is not None:
        old = serving.metrics[metric]
        reason = "" if new >= old else BELOW_SERVING.format(metric=metric, new=new, number=serving.number, old=old)
        reference = f"v{serving.number}: {old}"
    elif fit.baseline_metrics.get(metric) is not None:
        old = fit.baseline_metrics[metric]
        reason = (
            "" if new >= old else BELOW_BASELINE.format(metric=metric, new=new, baseline=fit.baseline_name, old=old)
        )
        reference = f"{fit.baseline_name}: {old}"
    else:
        reason = ""
        reference = fit.reference or "nothing to compare"
    publish = not reason
    if publish and serving is not None:
        serving.status = ModelVersion.Status.SUPERSEDED
        serving.save(update_fields=["status"])
    version = ModelVersion.objects.create(
        event=event,
        backend=event.backend,
        number=number,
        status=ModelVersion.Status.PUBLISHED if publish else ModelVersion.Status.KEPT,
        not_published_reason=reason,
        input_fingerprint=fingerprint,
        config=fit.config,
        metrics={
            **fit.metrics,
            **{f"baseline_{k}": v for k, v in fit.baseline_metrics.items()},
            **({"baseline": fit.baseline_name} if fit.baseline_metrics else {}),
        },
        n_attendees=fit.n_attendees,
        n_contexts=fit.n_contexts,
        n_interactions=fit.n_interactions,
        training_seconds=seconds,
        artifact=fit.artifact,
        artifact_bytes=fit.artifact_bytes,
        remote_arn=fit.remote_arn,
        published_at=timezone.now() if publish else None,
    )
    if publish:
        return version, PUBLISHED.format(number=number, metric=metric, new=new, reference=reference)
    return version, KEPT.format(number=number, reason=reason)


def batch_run(*, event: Event, trigger: str = "manual") -> TrainingRun:
    """Fill the batch table: one list per attendee who receives suggestions, computed by the live
    sources through `recommendations_for` (uncached, so every list is fresh), then the exposure
    cap applied over the whole table at once, which is fairer than the online, one-list-at-a-time
    cap. Ends by bumping the event's cache stamp so on-demand readers see the new table."""
    run = _start(event=event, kind=TrainingRun.Kind.BATCH, trigger=trigger)
    if run.status != TrainingRun.Status.RUNNING:
        return run
    try:
        viewers = list(
            Attendee.objects.filter(event=event, consent_receive_recommendations=True).select_related("event")
        )
        results = {}
        for viewer in viewers:
            results[viewer.pk] = recommendations_for(
                attendee=viewer,
                num_results=MAX_RESULTS,
                phase=Phase.LIVE,
                record_exposure=False,
                boost_presence=False,
            )
        ranked = {pk: [item.attendee_id for item in result.items] for pk, result in results.items()}
        # The cap governs the top of each list (what is shown); the rest follows in rank order.
        top = apply_exposure_cap(ranked, event.exposure_cap_share, k=EXPOSURE_LIST_SIZE)
        capped = {pk: top[pk] + [aid for aid in ranked[pk] if aid not in set(top[pk])] for pk in ranked}
        now = timezone.now()
        rows = []
        for pk, result in results.items():
            by_id = {item.attendee_id: item for item in result.items}
            rows.append(
                BatchRecommendation(
                    event=event,
                    attendee_id=pk,
                    model_version_id=result.model_version_id,
                    source=result.source,
                    items=[
                        {"attendee_id": aid, "score": by_id[aid].score, "reasons": by_id[aid].reasons}
                        for aid in capped[pk]
                    ],
                    computed_at=now,
                )
            )
        with transaction.atomic():
            BatchRecommendation.objects.bulk_create(
                rows,
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["attendee"],
                update_fields=["model_version", "source", "items", "computed_at"],
            )
            event_cache_invalidate(event_id=event.pk)
        sources = sorted({result.source for result in results.values() if result.source})
        return _finish(run, TrainingRun.Status.SUCCEEDED, BATCH_DONE.format(n=len(rows), sources=", ".join(sources)))
    except Exception as exc:
        logger.exception("batch run %s of event %s failed", run.pk, event.pk)
        return _finish(run, TrainingRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
