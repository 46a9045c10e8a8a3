"""The steps of a batch run: the input file of every attendee, the batch inference job, and its
output loaded into the batch table.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from events.models import Attendee, Event
from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.models import RemoteResource
from recommendations.backends.personalize.resources import (
    CreateFailed,
    create_or_adopt,
    find_in_list,
)
from recommendations.backends.personalize.runs.context import (
    TRAINING_POLL_SECONDS,
    Ctx,
    R,
    Step,
    Wait,
    named,
    s3_uri,
    status_result,
)
from recommendations.models import BatchRecommendation, ModelVersion

logger = logging.getLogger(__name__)


BATCH_NUM_RESULTS = 25


NO_MODEL = "No trained Amazon Personalize model (solution version) for this event: run a training first."


NO_FILTER = "The event's Personalize filter does not exist yet: run a training first."


def serving_version(event: Event) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(event=event, backend="personalize")
        .exclude(remote_arn="")
        .filter(status=ModelVersion.Status.PUBLISHED)
        .order_by("-number")
        .first()
    )


def batch_attendees(event: Event):
    return (
        Attendee.objects.filter(event=event, consent_receive_recommendations=True)
        .exclude(pk__in=mapping.erased_attendee_ids(event=event))
        .order_by("pk")
    )


def step_batch_input(ctx: Ctx) -> Wait | None:
    """JSON lines, one {"itemId": ...} per attendee who receives suggestions."""
    version = serving_version(ctx.event)
    if version is None:
        raise CreateFailed(NO_MODEL)
    ids = list(batch_attendees(ctx.event).values_list("pk", flat=True))
    tokens = mapping.ids_ensure(event=ctx.event, kind=mapping.Kind.ATTENDEE, object_ids=ids)
    body = "".join(json.dumps({"itemId": tokens[pk]}) + "\n" for pk in ids)
    clients.s3().put_object(Bucket=settings.PERSONALIZE_BUCKET, Key=ctx.keys["batch_input"], Body=body.encode())
    ctx.data.update({"input_key": ctx.keys["batch_input"], "n_items": len(ids), "model_version": version.pk})
    ctx.arns["solution_version"] = version.remote_arn
    return None


def step_batch_job(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    inputs = ctx.earlier("batch_input")
    solution_version = inputs["arns"]["solution_version"]
    name = ctx.names.batch_job(ctx.run.pk)
    if "batch_inference_job" not in ctx.arns:
        filter_arn = RemoteResource.objects.filter(event=ctx.event, kind=R.FILTER).values_list("arn", flat=True).first()
        if not filter_arn:
            raise CreateFailed(NO_FILTER)
        arn, adopted = create_or_adopt(
            lambda: pz.create_batch_inference_job(
                jobName=name,
                solutionVersionArn=solution_version,
                filterArn=filter_arn,
                numResults=BATCH_NUM_RESULTS,
                jobInput={"s3DataSource": {"path": s3_uri(ctx.keys["batch_input"])}},
                jobOutput={"s3DataDestination": {"path": s3_uri(ctx.keys["batch_output"])}},
                roleArn=settings.PERSONALIZE_ROLE_ARN,
            )["batchInferenceJobArn"],
            lambda: find_in_list(
                pz.list_batch_inference_jobs,
                "batchInferenceJobs",
                named(name, "jobName"),
                "batchInferenceJobArn",
                solutionVersionArn=solution_version,
            ),
        )
        ctx.arns["batch_inference_job"] = arn
        if not adopted:
            return Wait(TRAINING_POLL_SECONDS)
    desc = pz.describe_batch_inference_job(batchInferenceJobArn=ctx.arns["batch_inference_job"])["batchInferenceJob"]
    return status_result(desc, f"Batch inference job {name}", poll=TRAINING_POLL_SECONDS)


PERSONALIZE_REASON = gettext_noop("similar activity (Amazon Personalize)")


def reason_dict() -> dict:
    return {"kind": "similar_activity", "text": PERSONALIZE_REASON, "weight": 1.0}


def step_batch_load(ctx: Ctx) -> Wait | None:
    """Read every `*.out` file under the output prefix into the batch table."""
    s3, bucket = clients.s3(), settings.PERSONALIZE_BUCKET
    inputs = ctx.earlier("batch_input")
    version_id = inputs.get("data", {}).get("model_version")
    results: dict[str, tuple[list[str], list[float]]] = {}
    errors = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=ctx.keys["batch_output"]):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".out"):
                continue
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            for line in body.splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                if record.get("error"):
                    errors += 1
                    continue
                output = record.get("output") or {}
                results[record["input"]["itemId"]] = (output.get("recommendedItems", []), output.get("scores", []))
    known = mapping.attendees_for_tokens(
        event=ctx.event, tokens=set(results) | {t for items, _ in results.values() for t in items}
    )
    now = timezone.now()
    loaded = 0
    for token, (items, scores) in results.items():
        attendee_id = known.get(token)
        if attendee_id is None:
            continue
        suggestions = []
        for i, item in enumerate(items):
            other = known.get(item)
            if other is None or other == attendee_id:
                continue
            score = float(scores[i]) if i < len(scores) else 0.0
            suggestions.append({"attendee_id": other, "score": score, "reasons": [reason_dict()]})
        BatchRecommendation.objects.update_or_create(
            attendee_id=attendee_id,
            defaults={
                "event": ctx.event,
                "model_version_id": version_id,
                "source": "personalize",
                "items": suggestions,
                "computed_at": now,
            },
        )
        loaded += 1
    ctx.data.update({"loaded": loaded, "errors": errors})
    ctx.note(f"Loaded {loaded} batch lists ({errors} input lines failed remotely).")
    return None


STEPS = [
    Step("batch_input", step_batch_input, "S3 PutObject {batch_input} (JSON lines of itemId)"),
    Step(
        "batch_job",
        step_batch_job,
        "CreateBatchInferenceJob with the filter, output to {batch_output}; DescribeBatchInferenceJob until ACTIVE",
    ),
    Step("batch_load", step_batch_load, "S3 ListObjectsV2/GetObject {batch_output}*.out into the batch table"),
]
