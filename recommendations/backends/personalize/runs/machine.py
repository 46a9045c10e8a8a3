"""Personalize runs as persisted state machines.

A run is a `TrainingRun` row (kind personalize, batch or teardown) whose `steps` list holds, per
step: name, status, attempts, the ARNs it made, timestamps and a message. `personalize_run_advance`
advances one run as far as it can without waiting: each step is one transaction under a row lock
(`select_for_update(skip_locked=True)`), so two workers never advance the same run, and a worker
killed at any point loses at most the step in flight, which the next worker repeats by describing
what exists (stored ARNs) or adopting it by name (ResourceAlreadyExistsException).

Long operations are polled by returning a countdown; the Celery task re-schedules itself with it.
Nothing ever sleeps in a worker.

The steps themselves are the step sets' (`training_steps`, `batch_steps`, `teardown_steps`).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, StubResponseError
from django.db import DatabaseError, transaction
from django.utils import timezone

from events.models import Event
from recommendations.backends.personalize.resources import (
    CreateFailed,
    Names,
    error_code,
    filter_expression,
    is_transient,
)
from recommendations.backends.personalize.runs import batch_steps, teardown_steps, training_steps
from recommendations.backends.personalize.runs.context import (
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    TRAINING_POLL_SECONDS,
    WAITING,
    Ctx,
    Kind,
    Status,
    Step,
    Wait,
    s3_keys,
    s3_uri,
)
from recommendations.models import TrainingRun

logger = logging.getLogger(__name__)


MAX_TRANSIENT_ATTEMPTS = 8  # with the backoff below: about 20 minutes of throttling, then give up


BACKOFF_BASE_SECONDS = 5.0


BACKOFF_CAP_SECONDS = 600.0


# A re-delivered or duplicated task that arrives well before the poll its chain scheduled exits
# instead of starting a second polling chain for the same run.
EARLY_SLACK = timedelta(seconds=2)


TOO_MANY_RETRIES = "Gave up after {n} attempts: {error}"


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with 'equal jitter': half the delay fixed, half random, so that
    workers throttled together do not come back together."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


STEPS: dict[str, list[Step]] = {
    Kind.PERSONALIZE: training_steps.STEPS,
    Kind.BATCH: batch_steps.STEPS,
    Kind.TEARDOWN: teardown_steps.STEPS,
}


FINISH: dict[str, Callable[[TrainingRun], None]] = {Kind.PERSONALIZE: training_steps.finish_training}


def initial_steps(kind: str) -> list[dict]:
    return [{"name": s.name, "status": PENDING, "attempts": 0, "arns": {}} for s in STEPS[kind]]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _fail(run: TrainingRun, state: dict | None, message: str, now: datetime) -> None:
    if state is not None:
        state["status"] = FAILED
        state["message"] = message
        state["finished_at"] = _iso(now)
    run.status = Status.FAILED
    run.message = message
    run.finished_at = now
    run.save()
    logger.warning("Personalize run %s failed: %s", run.pk, message)


def _client_error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{exc.operation_name}: {err.get('Code', '')}: {err.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"


def personalize_run_advance(*, run_id: int, now: datetime | None = None) -> float | None:
    """Advance the run as far as it goes without waiting. Returns the countdown (seconds) after
    which it should be advanced again, or None when there is nothing to schedule: the run is
    finished or failed, is gone, or another worker holds it."""
    while True:
        moment = now or timezone.now()
        with transaction.atomic():
            run = (
                TrainingRun.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .filter(pk=run_id)
                .first()
            )
            if run is None or run.status not in (Status.PENDING, Status.RUNNING):
                return None
            if [s.get("name") for s in run.steps] != [s.name for s in STEPS.get(run.kind, [])]:
                return None  # not a Personalize run (the local model's batch runs share the kind)
            index = next((i for i, s in enumerate(run.steps) if s["status"] != DONE), None)
            if index is None:
                finish = FINISH.get(run.kind)
                if finish:
                    finish(run)
                run.status, run.progress, run.finished_at = Status.SUCCEEDED, 1.0, moment
                run.save()
                return None
            state = run.steps[index]
            poll_at = state.get("poll_at")
            if poll_at and moment < datetime.fromisoformat(poll_at) - EARLY_SLACK:
                return None  # a poll is already scheduled by the chain that owns this run
            if run.status == Status.PENDING:
                run.status, run.started_at = Status.RUNNING, moment
            state["status"] = RUNNING
            state.setdefault("started_at", _iso(moment))
            step = STEPS[run.kind][index]
            try:
                result = step.run(Ctx(run, state))
            except CreateFailed as exc:
                _fail(run, state, str(exc), moment)
                return None
            except S3UploadFailedError as exc:  # boto3's transfer wraps S3's ClientError in this
                _fail(run, state, f"S3 upload: {exc}", moment)
                return None
            except (ClientError, BotoCoreError) as exc:
                if isinstance(exc, StubResponseError):
                    raise  # botocore's Stubber saying the code made a call it should not have
                if isinstance(exc, ClientError) and error_code(exc) == "ResourceInUseException":
                    # Busy, not broken: an import, a training or a campaign update is still
                    # running on what this step needs. Wait for it like any long operation.
                    state["status"] = WAITING
                    state["last_error"] = f"{_client_error_text(exc)}; waiting"
                    state["poll_at"] = _iso(moment + timedelta(seconds=TRAINING_POLL_SECONDS))
                    run.save()
                    return float(TRAINING_POLL_SECONDS)
                if not is_transient(exc):
                    _fail(run, state, _client_error_text(exc), moment)
                    return None
                # attempts: every retry of this step, for the admin; retries: the ones in a row,
                # which is what the limit is about (a training polled for hours may be throttled
                # now and then without ever being in trouble).
                state["attempts"] = state.get("attempts", 0) + 1
                state["retries"] = state.get("retries", 0) + 1
                run.attempts += 1
                if state["retries"] >= MAX_TRANSIENT_ATTEMPTS:
                    _fail(
                        run,
                        state,
                        TOO_MANY_RETRIES.format(n=state["retries"], error=_client_error_text(exc)),
                        moment,
                    )
                    return None
                delay = backoff_seconds(state["retries"])
                state["status"] = WAITING
                state["last_error"] = f"{_client_error_text(exc)}; retrying in {delay:.0f} s"
                state["poll_at"] = _iso(moment + timedelta(seconds=delay))
                run.save()
                return delay
            except DatabaseError:
                raise  # the transaction is broken: nothing can be recorded; the sweeper retries
            except Exception as exc:
                # A bug, or an error of a kind not foreseen: fail visibly with the reason rather
                # than crash the task and have the sweeper repeat it every minute.
                logger.exception("Personalize run %s: unexpected error in step %s", run.pk, step.name)
                _fail(run, state, f"Unexpected error: {type(exc).__name__}: {exc}", moment)
                return None
            state["retries"] = 0
            if isinstance(result, Wait):
                state["status"] = WAITING
                state["poll_at"] = _iso(moment + timedelta(seconds=result.seconds))
                run.save()
                return result.seconds
            state["status"] = DONE
            state["finished_at"] = _iso(moment)
            state.pop("poll_at", None)
            run.progress = sum(1 for s in run.steps if s["status"] == DONE) / len(run.steps)
            run.save()


def run_plan(*, event: Event, token: str) -> list[str]:
    """The calls a training run of this event would make, and what it would upload; no AWS call
    and no write. `token` is the event's pseudonymous id (or a placeholder if it has none yet)."""
    names = Names(token)
    keys = s3_keys(token=token, run_id="<run>")
    fields = {
        **{p: getattr(names, p) for p in ("dataset_group", "interactions_schema", "items_schema")},
        **{p: getattr(names, p) for p in ("interactions_dataset", "items_dataset", "event_tracker")},
        **{p: getattr(names, p) for p in ("filter", "solution", "campaign")},
        "interactions_key": s3_uri(keys["interactions"]),
        "items_key": s3_uri(keys["items"]),
        "batch_input": s3_uri(keys["batch_input"]),
        "batch_output": s3_uri(keys["batch_output"]),
        "filter_expression": filter_expression(token),
        "solution_config": json.dumps(training_steps.solution_config(event)),
    }
    lines = []
    for kind in (Kind.PERSONALIZE, Kind.BATCH, Kind.TEARDOWN):
        lines.append(f"{TrainingRun.Kind(kind).label}:")
        for i, step in enumerate(STEPS[kind], 1):
            lines.append(f"  {i}. {step.name}: {step.plan.format(**fields)}")
    return lines
