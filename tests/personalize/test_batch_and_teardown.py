"""Batch inference into the batch table, and teardown in dependency order."""

import json

import pytest

from recommendations.backends.personalize.models import PersonalizeId, RemoteResource
from recommendations.backends.personalize.runs.batch_steps import NO_MODEL, PERSONALIZE_REASON
from recommendations.backends.personalize.runs.machine import personalize_run_advance
from recommendations.backends.personalize.services import personalize_run_start
from recommendations.models import BatchRecommendation, ModelVersion, TrainingRun

from .stubs import BUCKET, PREFIX, ROLE, arn

pytestmark = pytest.mark.django_db


def _people(event):
    return dict(PersonalizeId.objects.filter(event=event, kind="attendee").values_list("object_id", "token"))


def test_batch_inference_is_loaded_into_the_batch_table(trained, world, aws, drive):
    _, script, _ = trained
    world.cyd.consent_receive_recommendations = False  # gets no list, may still appear in others'
    world.cyd.save()
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.BATCH)
    version = ModelVersion.objects.get(event=world.event, status="published")
    job = arn("batch-inference-job", f"mm-{script.t}-b{run.pk}")
    base = f"{PREFIX}{script.t}/batch/{run.pk}/"
    script.ok(
        "create_batch_inference_job",
        {"batchInferenceJobArn": job},
        {
            "jobName": f"mm-{script.t}-b{run.pk}",
            "solutionVersionArn": version.remote_arn,
            "filterArn": script.filter_arn,
            "numResults": 25,
            "jobInput": {"s3DataSource": {"path": f"s3://{BUCKET}/{base}input.jsonl"}},
            "jobOutput": {"s3DataDestination": {"path": f"s3://{BUCKET}/{base}output/"}},
            "roleArn": ROLE,
        },
    )
    assert drive(run, advances=1) == [300]  # input written, job created, polled in five minutes

    people = _people(world.event)
    ada, bob, cyd = people[world.ada.pk], people[world.bob.pk], people[world.cyd.pk]
    body = aws.s3.get_object(Bucket=BUCKET, Key=f"{base}input.jsonl")["Body"].read().decode()
    assert body == f'{{"itemId": "{ada}"}}\n{{"itemId": "{bob}"}}\n'  # one JSON object per line

    # What Personalize writes: <input file>.out, one JSON object per input line.
    output = [
        {
            "input": {"itemId": ada},
            "output": {"recommendedItems": [bob, "unknown-token", ada, cyd], "scores": [0.9, 0.5, 0.4, 0.2]},
            "error": None,
        },
        {"input": {"itemId": bob}, "output": None, "error": "Item not found in the solution version"},
    ]
    aws.s3.put_object(
        Bucket=BUCKET,
        Key=f"{base}output/input.jsonl.out",
        Body="".join(json.dumps(line) + "\n" for line in output).encode(),
    )
    script.ok(
        "describe_batch_inference_job",
        {"batchInferenceJob": {"batchInferenceJobArn": job, "status": "ACTIVE"}},
        {"batchInferenceJobArn": job},
    )
    drive(run)
    aws.pz.assert_no_pending_responses()
    assert run.status == TrainingRun.Status.SUCCEEDED
    rows = list(BatchRecommendation.objects.filter(event=world.event))
    assert len(rows) == 1
    row = rows[0]
    assert (row.attendee_id, row.source, row.model_version_id) == (world.ada.pk, "personalize", version.pk)
    reason = [{"kind": "similar_activity", "text": PERSONALIZE_REASON, "weight": 1.0}]
    assert row.items == [
        {"attendee_id": world.bob.pk, "score": 0.9, "reasons": reason},
        {"attendee_id": world.cyd.pk, "score": 0.2, "reasons": reason},
    ]
    load = next(s for s in run.steps if s["name"] == "batch_load")
    assert load["data"] == {"loaded": 1, "errors": 1}


def test_batch_without_a_trained_model_fails_with_the_reason(aws, world):
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.BATCH)
    assert personalize_run_advance(run_id=run.pk) is None
    run.refresh_from_db()
    assert (run.status, run.message) == (TrainingRun.Status.FAILED, NO_MODEL)


def test_teardown_deletes_everything_in_dependency_order(trained, world, aws, drive):
    _, script, _ = trained
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.TEARDOWN)
    gone = "ResourceNotFoundException"
    script.ok("delete_campaign", {}, {"campaignArn": script.campaign_arn})
    script.error("describe_campaign", gone, params={"campaignArn": script.campaign_arn})
    script.ok("delete_solution", {}, {"solutionArn": script.solution_arn})
    script.error("describe_solution", gone, params={"solutionArn": script.solution_arn})
    script.ok("delete_event_tracker", {}, {"eventTrackerArn": script.tracker_arn})
    script.error("describe_event_tracker", gone, params={"eventTrackerArn": script.tracker_arn})
    script.ok("delete_filter", {}, {"filterArn": script.filter_arn})
    script.error("describe_filter", gone, params={"filterArn": script.filter_arn})
    script.ok("delete_dataset", {}, {"datasetArn": script.idata_arn})
    script.ok("delete_dataset", {}, {"datasetArn": script.tdata_arn})
    script.ok(  # still deleting: the group waits for it
        "describe_dataset",
        {"dataset": {"datasetArn": script.idata_arn, "status": "DELETE IN_PROGRESS"}},
        {"datasetArn": script.idata_arn},
    )
    script.error("describe_dataset", gone, params={"datasetArn": script.tdata_arn})
    script.error("describe_dataset", gone, params={"datasetArn": script.idata_arn})
    script.ok("delete_dataset_group", {}, {"datasetGroupArn": script.dsg_arn})
    script.error("describe_dataset_group", gone, params={"datasetGroupArn": script.dsg_arn})
    script.ok("delete_schema", {}, {"schemaArn": script.ischema_arn})
    script.ok("delete_schema", {}, {"schemaArn": script.tschema_arn})
    countdowns = drive(run)
    aws.pz.assert_no_pending_responses()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert countdowns == [60] * 7
    assert not RemoteResource.objects.filter(event=world.event).exists()
    deleted = {s["name"]: s["arns"] for s in run.steps}
    assert deleted["delete_campaign"] == {"campaign": script.campaign_arn}
    assert deleted["delete_dataset_group"] == {"dataset_group": script.dsg_arn}
