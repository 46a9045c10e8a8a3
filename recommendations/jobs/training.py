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
5. every run is a `TrainingRun` row (`recommendations.jobs.runs`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from events.models import Event, Interaction
from recommendations.backends import get_backend
from recommendations.jobs.runs import run_finish, run_start, run_step
from recommendations.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)


NOT_TRAINABLE = "Backend {backend!r} cannot be trained (it has no fit/training_fingerprint)."


TOO_FEW_NEW = "{new} new qualifying interactions since v{number}; a scheduled retrain needs {needed}."


UNCHANGED = "Same inputs as v{number} (fingerprint {fingerprint}); no new version."


NO_METRIC = "The fit reported no {metric} (serving v{number} has one); kept, not published."


BELOW_SERVING = "{metric} {new:.4f} < serving v{number}'s {old:.4f}"


BELOW_BASELINE = "{metric} {new:.4f} < the {baseline}'s {old:.4f}"


PUBLISHED = "Published v{number}: {metric} {new} (was {reference})"


KEPT = "Kept v{number}, not published: {reason}"


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


def run_training(*, event: Event, trigger: str = "manual", config=None, learn: bool = True) -> TrainingRun:
    """Train `event`'s backend once, idempotently, and publish the result if it passes the gate.
    The one path for every trigger: the schedule, the admin, the API and `manage.py train` (which
    may pass an explicit engine `config`)."""
    run = run_start(event=event, kind=TrainingRun.Kind.TRAIN, trigger=trigger)
    if run.status != TrainingRun.Status.RUNNING:
        return run
    try:
        return _train(run=run, event=event, trigger=trigger, config=config, learn=learn)
    except Exception as exc:
        logger.exception("training run %s of event %s failed", run.pk, event.pk)
        return run_finish(run, TrainingRun.Status.FAILED, f"{type(exc).__name__}: {exc}")


def _train(*, run: TrainingRun, event: Event, trigger: str, config=None, learn: bool = True) -> TrainingRun:
    backend = get_backend(event.backend)
    if not isinstance(backend, TrainableBackend):
        return run_finish(run, TrainingRun.Status.FAILED, NOT_TRAINABLE.format(backend=str(event.backend)))

    last = ModelVersion.objects.filter(event=event).order_by("-number").first()
    if trigger == "schedule" and last is not None:
        needed = settings.RECOMMENDATION_RETRAIN_MIN_NEW_INTERACTIONS
        new = Interaction.objects.filter(event=event, qualifies=True, created_at__gt=last.created_at).count()
        if new < needed:
            return run_finish(
                run, TrainingRun.Status.SKIPPED, TOO_FEW_NEW.format(new=new, number=last.number, needed=needed)
            )

    explicit = ({} if config is None else {"config": config}) | ({} if learn else {"learn": False})
    fingerprint = backend.training_fingerprint(event=event, **explicit)
    run_step(run, "fingerprint", fingerprint=fingerprint)
    same = ModelVersion.objects.filter(event=event, input_fingerprint=fingerprint).order_by("-number").first()
    if same is not None:
        return run_finish(
            run,
            TrainingRun.Status.UNCHANGED,
            UNCHANGED.format(number=same.number, fingerprint=fingerprint[:12]),
            model_version=same,
        )

    started = time.perf_counter()
    fit = backend.fit(event=event, **explicit)
    seconds = time.perf_counter() - started
    run_step(run, "fit", seconds=round(seconds, 3), metrics=fit.metrics)

    version, message = _version_create_and_gate(event=event, fingerprint=fingerprint, fit=fit, seconds=seconds)
    run_step(run, "gate", status=version.status)
    return run_finish(run, TrainingRun.Status.SUCCEEDED, message, model_version=version)


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


@transaction.atomic
def model_version_publish(*, version: ModelVersion) -> ModelVersion | None:
    """Serve `version` in place of the published one: an organizer's publish of a kept version, or
    a roll back to an earlier one. The gate's invariant (one published version per event) under the
    same event row lock; returns the version it replaced, if any. The publish signal bumps the
    event's lists, so every list comes from `version` from the next read on."""
    Event.objects.select_for_update().get(pk=version.event_id)
    serving = (
        ModelVersion.objects.filter(event_id=version.event_id, status=ModelVersion.Status.PUBLISHED)
        .exclude(pk=version.pk)
        .first()
    )
    if serving is not None:
        serving.status = ModelVersion.Status.SUPERSEDED
        serving.save(update_fields=["status"])
    version.status = ModelVersion.Status.PUBLISHED
    version.published_at = timezone.now()
    version.save(update_fields=["status", "published_at"])
    return serving
