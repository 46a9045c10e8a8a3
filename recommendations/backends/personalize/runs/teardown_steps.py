"""The steps of a teardown run: every remote resource of the event deleted, dependants first, each
waited on until it is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from botocore.exceptions import ClientError

from recommendations.backends.personalize.models import RemoteResource
from recommendations.backends.personalize.resources import (
    POLL_SECONDS,
    CreateFailed,
    error_code,
)
from recommendations.backends.personalize.runs.context import Ctx, R, Step, Wait, longest

logger = logging.getLogger(__name__)


def _not_found(exc: ClientError) -> bool:
    return error_code(exc) == "ResourceNotFoundException"


def _teardown(
    ctx: Ctx, kind: str, delete: Callable[[str], object], describe: Callable[[str], dict] | None
) -> Wait | None:
    """Delete one resource and wait until it is gone; its row goes with it."""
    res = RemoteResource.objects.filter(event=ctx.event, kind=kind).first()
    if res is None or not res.arn:
        if res is not None:
            res.delete()
        return None
    ctx.arns[kind] = res.arn
    if not res.extra.get("delete_requested"):
        try:
            delete(res.arn)
        except ClientError as exc:
            if _not_found(exc):
                res.delete()
                return None
            if error_code(exc) == "ResourceInUseException":
                return Wait(POLL_SECONDS)  # a dependant is still being deleted
            raise
        res.extra = {**res.extra, "delete_requested": True}
        res.status = "DELETE PENDING"
        res.save()
        if describe is None:
            res.delete()
            return None
        return Wait(POLL_SECONDS)
    try:
        # Not None: a resource without a status to describe went with its row above, in the
        # same step (one transaction), so none is ever left marked delete_requested.
        assert describe is not None
        desc = describe(res.arn)
    except ClientError as exc:
        if _not_found(exc):
            res.delete()
            return None
        raise
    res.status = desc.get("status", "")
    res.save()
    if res.status.endswith("FAILED"):
        raise CreateFailed(f"Deleting {res.get_kind_display().lower()} {res.name}: {desc.get('failureReason', '')}")
    return Wait(POLL_SECONDS)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _deletes(resource: str, *kinds: str, wait: bool = True) -> Callable[[Ctx], Wait | None]:
    """A step that deletes the event's resources of `kinds` with Personalize's Delete<Resource>
    and, with `wait`, describes each (Describe<Resource>) until it is gone."""
    arn = _camel(resource) + "Arn"

    def step(ctx: Ctx) -> Wait | None:
        delete = getattr(ctx.pz, f"delete_{resource}")
        describe = getattr(ctx.pz, f"describe_{resource}")

        def gone(arn_value: str) -> dict:
            return describe(**{arn: arn_value})[_camel(resource)]

        return longest(
            *(
                _teardown(ctx, kind, lambda arn_value: delete(**{arn: arn_value}), gone if wait else None)
                for kind in kinds
            )
        )

    step.__name__ = f"delete_{resource}"
    return step


# Dependants first. Deleting a solution deletes its versions; schemas are deleted at once and have
# no status to wait on.
STEPS = [
    Step("delete_campaign", _deletes("campaign", R.CAMPAIGN), "DeleteCampaign; DescribeCampaign until gone"),
    Step(
        "delete_solution",
        _deletes("solution", R.SOLUTION),
        "DeleteSolution (and its versions); DescribeSolution until gone",
    ),
    Step("delete_event_tracker", _deletes("event_tracker", R.EVENT_TRACKER), "DeleteEventTracker; until gone"),
    Step("delete_filter", _deletes("filter", R.FILTER), "DeleteFilter; until gone"),
    Step(
        "delete_datasets",
        _deletes("dataset", R.INTERACTIONS_DATASET, R.ITEMS_DATASET),
        "DeleteDataset x2; until gone",
    ),
    Step("delete_dataset_group", _deletes("dataset_group", R.DATASET_GROUP), "DeleteDatasetGroup; until gone"),
    Step("delete_schemas", _deletes("schema", R.INTERACTIONS_SCHEMA, R.ITEMS_SCHEMA, wait=False), "DeleteSchema x2"),
]
