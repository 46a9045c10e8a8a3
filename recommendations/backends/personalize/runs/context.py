"""What a step of a Personalize run works with: the run's context (`Ctx`: the event, its
pseudonymous names and S3 keys, the client, the step's persisted state), `Wait` for long
operations, and describe-or-create (`ensure`) for one resource.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from events.models import Event
from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.models import RemoteResource
from recommendations.backends.personalize.resources import (
    ACTIVE,
    POLL_SECONDS,
    CreateFailed,
    Names,
    create_or_adopt,
)
from recommendations.models import TrainingRun

logger = logging.getLogger(__name__)


Kind = TrainingRun.Kind


Status = TrainingRun.Status


R = RemoteResource.Kind


PENDING, RUNNING, WAITING, DONE, FAILED = "pending", "running", "waiting", "done", "failed"


TRAINING_POLL_SECONDS = 300  # a solution version trains for tens of minutes at least


@dataclass(frozen=True)
class Wait:
    seconds: float


def s3_uri(key: str) -> str:
    return f"s3://{settings.PERSONALIZE_BUCKET or '<PERSONALIZE_BUCKET>'}/{key}"


def s3_keys(*, token: str, run_id: int | str) -> dict[str, str]:
    prefix = settings.PERSONALIZE_PREFIX.strip("/")
    base = f"{prefix}/{token}/" if prefix else f"{token}/"
    return {
        "interactions": f"{base}runs/{run_id}/interactions.csv",
        "items": f"{base}runs/{run_id}/items.csv",
        "batch_input": f"{base}batch/{run_id}/input.jsonl",
        "batch_output": f"{base}batch/{run_id}/output/",
    }


class Ctx:
    def __init__(self, run: TrainingRun, state: dict):
        self.run = run
        self.event: Event = run.event
        self.state = state
        self.token = mapping.event_token(self.event)
        self.names = Names(self.token)
        self.keys = s3_keys(token=self.token, run_id=run.pk)
        self.pz = clients.personalize()

    @property
    def arns(self) -> dict:
        return self.state.setdefault("arns", {})

    @property
    def data(self) -> dict:
        return self.state.setdefault("data", {})

    def note(self, text: str) -> None:
        self.state["message"] = text

    def earlier(self, step: str) -> dict:
        """The persisted state of an earlier step of this run."""
        return next(s for s in self.run.steps if s["name"] == step)

    def resource(self, kind: str, name: str) -> RemoteResource:
        res, _ = RemoteResource.objects.get_or_create(event=self.event, kind=kind, defaults={"name": name})
        return res

    def arn_of(self, kind: str) -> str:
        arn = RemoteResource.objects.filter(event=self.event, kind=kind).values_list("arn", flat=True).first()
        if not arn:
            raise CreateFailed(f"{R(kind).label} is missing; the run cannot continue.")
        return arn


def status_result(desc: dict, what: str, poll: float = POLL_SECONDS) -> Wait | None:
    status = desc.get("status", "")
    if status == ACTIVE:
        return None
    if status.endswith("FAILED"):
        raise CreateFailed(f"{what}: {status}: {desc.get('failureReason') or 'no reason given'}")
    return Wait(poll)


def ensure(
    ctx: Ctx,
    res: RemoteResource,
    *,
    create: Callable[[], str],
    find: Callable[[], str | None],
    describe: Callable[[str], dict] | None,
) -> Wait | None:
    """Describe-or-create one resource. A resource seen ACTIVE is trusted without a call."""
    if res.arn and res.status == ACTIVE:
        ctx.arns[res.kind] = res.arn
        return None
    if not res.arn:
        arn, adopted = create_or_adopt(create, find)
        res.arn = arn
        res.status = "CREATE PENDING" if describe else ACTIVE
        res.save()
        ctx.arns[res.kind] = arn
        if adopted:
            ctx.note(f"Adopted the existing {res.get_kind_display().lower()} {res.name}.")
        if describe is None:
            return None
        if not adopted:
            return Wait(POLL_SECONDS)
    # A resource without a status to describe (a schema) is saved ACTIVE as soon as it has an ARN.
    assert describe is not None
    desc = describe(res.arn)
    res.status = desc.get("status", "")
    res.save()
    ctx.arns[res.kind] = res.arn
    return status_result(desc, f"{res.get_kind_display()} {res.name}")


def longest(*waits: Wait | None) -> Wait | None:
    pending = [w for w in waits if w is not None]
    return max(pending, key=lambda w: w.seconds) if pending else None


def named(name: str, key: str = "name") -> Callable[[dict], bool]:
    return lambda entry: entry.get(key) == name


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Ctx], Wait | None]
    plan: str  # the calls it makes, for `personalize_plan`
