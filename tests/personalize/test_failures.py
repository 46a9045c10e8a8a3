"""Each failure a run meets: CREATE FAILED, throttling, AccessDenied, an existing resource, and a
worker killed between or inside steps. The Stubber fails any call that was not queued, so "no
duplicate create" is checked by the absence of a second create in each queue."""

from datetime import timedelta

import pytest
from django.utils import timezone

from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.models import RemoteResource
from recommendations.backends.personalize.runs.machine import MAX_TRANSIENT_ATTEMPTS, personalize_run_advance
from recommendations.backends.personalize.services import personalize_run_start
from recommendations.models import TrainingRun

from .stubs import Script

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(aws, world):
    script = Script(aws, mapping.event_token(world.event))
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE)
    return run, script


def _step(run, name):
    run.refresh_from_db()
    return next(s for s in run.steps if s["name"] == name)


def test_create_failed_stops_the_run_with_the_reason(started, aws, drive):
    run, script = started
    script.create_dataset_group()
    script.describe_dataset_group()
    script.create_schemas()
    script.create_datasets()
    script.describe_datasets()
    script.create_event_tracker()
    script.describe_event_tracker()
    script.create_imports(run.pk)
    script.describe_imports(run.pk)
    script.create_filter()
    script.describe_filter()
    script.create_solution()
    script.describe_solution()
    script.create_solution_version(run.pk)
    script.describe_solution_version(
        run.pk, status="CREATE FAILED", reason="There are not enough interactions to train a model."
    )
    drive(run)
    aws.pz.assert_no_pending_responses()
    expected = (
        f"Solution version mm-{script.t}-r{run.pk}: CREATE FAILED: There are not enough interactions to train a model."
    )
    assert run.status == TrainingRun.Status.FAILED
    assert run.message == expected
    assert run.finished_at is not None
    failed = _step(run, "solution_version")
    assert (failed["status"], failed["message"]) == ("failed", expected)
    assert _step(run, "campaign")["status"] == "pending"
    # A failed run is never advanced again.
    assert personalize_run_advance(run_id=run.pk, now=timezone.now() + timedelta(days=1)) is None


def test_throttling_is_retried_with_backoff_then_succeeds(started, aws):
    run, script = started
    script.error("create_dataset_group", "ThrottlingException", "Rate exceeded", params={"name": script.dsg})
    now = timezone.now()
    countdown = personalize_run_advance(run_id=run.pk, now=now)
    # First retry: a 5 s base with equal jitter, so between 2.5 and 5 seconds.
    assert 2.5 <= countdown <= 5.0
    state = _step(run, "dataset_group")
    assert state["status"] == "waiting"
    assert state["attempts"] == 1
    assert state["last_error"].startswith("CreateDatasetGroup: ThrottlingException: Rate exceeded; retrying in ")
    assert run.status == TrainingRun.Status.RUNNING
    assert run.attempts == 1
    script.create_dataset_group()
    assert personalize_run_advance(run_id=run.pk, now=now + timedelta(seconds=10)) == 60
    aws.pz.assert_no_pending_responses()
    assert RemoteResource.objects.get(event=run.event, kind="dataset_group").arn == script.dsg_arn


def test_throttling_without_end_fails_after_the_last_attempt(started, aws):
    run, script = started
    now = timezone.now()
    for attempt in range(MAX_TRANSIENT_ATTEMPTS):
        script.error("create_dataset_group", "ThrottlingException", "Rate exceeded", params={"name": script.dsg})
        personalize_run_advance(run_id=run.pk, now=now + timedelta(hours=attempt))
    aws.pz.assert_no_pending_responses()
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert run.message == (
        f"Gave up after {MAX_TRANSIENT_ATTEMPTS} attempts: CreateDatasetGroup: ThrottlingException: Rate exceeded"
    )


def test_access_denied_fails_the_run_at_once(started, aws):
    run, script = started
    message = "User: arn:aws:iam::123456789012:user/app is not authorized to perform: personalize:CreateDatasetGroup"
    script.error("create_dataset_group", "AccessDeniedException", message, params={"name": script.dsg})
    assert personalize_run_advance(run_id=run.pk) is None
    aws.pz.assert_no_pending_responses()
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert run.message == f"CreateDatasetGroup: AccessDeniedException: {message}"
    assert _step(run, "dataset_group")["attempts"] == 0
    assert not RemoteResource.objects.filter(event=run.event).exclude(arn="").exists()


def test_existing_resource_with_the_same_name_is_adopted(started, aws):
    run, script = started
    script.error("create_dataset_group", "ResourceAlreadyExistsException", "exists", params={"name": script.dsg})
    script.ok(
        "list_dataset_groups",
        {
            "datasetGroups": [
                {
                    "name": "someone-else",
                    "datasetGroupArn": "arn:aws:personalize:eu-west-1:123456789012:dataset-group/x",
                },
                {"name": script.dsg, "datasetGroupArn": script.dsg_arn, "status": "ACTIVE"},
            ]
        },
        {},
    )
    script.describe_dataset_group()  # adopted: described at once, no waiting
    script.create_schemas()
    script.create_datasets()
    assert personalize_run_advance(run_id=run.pk) == 60
    aws.pz.assert_no_pending_responses()
    state = _step(run, "dataset_group")
    assert state["status"] == "done"
    assert state["message"] == f"Adopted the existing dataset group {script.dsg}."
    assert state["arns"] == {"dataset_group": script.dsg_arn}


def test_worker_killed_between_steps_resumes_without_duplicates(started, aws):
    run, script = started
    now = timezone.now()
    script.create_dataset_group()
    assert personalize_run_advance(run_id=run.pk, now=now) == 60
    # The worker dies here. Everything in memory is gone; clients are rebuilt from scratch
    # except for the Stubber, which has to stay attached to see the calls.
    run_id = run.pk
    del run
    # A re-delivered copy of the task arriving before the scheduled poll does nothing at all.
    assert personalize_run_advance(run_id=run_id, now=now + timedelta(seconds=1)) is None
    # The next worker describes what the first one created: no second CreateDatasetGroup.
    script.describe_dataset_group()
    script.create_schemas()
    script.create_datasets()
    assert personalize_run_advance(run_id=run_id, now=now + timedelta(minutes=2)) == 60
    aws.pz.assert_no_pending_responses()
    run = TrainingRun.objects.get(pk=run_id)
    assert [s["status"] for s in run.steps[:3]] == ["done", "done", "waiting"]


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing catches it, the transaction of the step in flight is lost."""


def test_worker_killed_inside_a_step_adopts_what_aws_already_made(started, aws):
    run, script = started
    now = timezone.now()
    script.create_dataset_group()
    script.describe_dataset_group()
    script.create_schemas()
    personalize_run_advance(run_id=run.pk, now=now)
    # AWS creates the interactions dataset, then the worker dies before our commit.
    interactions = {
        "name": f"mm-{script.t}-interactions",
        "schemaArn": script.ischema_arn,
        "datasetGroupArn": script.dsg_arn,
        "datasetType": "Interactions",
    }
    script.ok("create_dataset", {"datasetArn": script.idata_arn}, interactions)
    client = clients.personalize()

    def kill(**kwargs):
        raise WorkerKilled

    client.meta.events.register("after-call.personalize.CreateDataset", kill)
    try:
        with pytest.raises(WorkerKilled):
            personalize_run_advance(run_id=run.pk, now=now + timedelta(minutes=2))
    finally:
        client.meta.events.unregister("after-call.personalize.CreateDataset", kill)
    aws.pz.assert_no_pending_responses()
    # The dataset's ARN was rolled back with the step; the next worker finds the name taken and
    # adopts the dataset instead of failing or making a second one.
    assert not RemoteResource.objects.filter(event=run.event, kind="interactions_dataset").exclude(arn="").exists()
    script.error("create_dataset", "ResourceAlreadyExistsException", "exists", params=interactions)
    script.ok(
        "list_datasets",
        {"datasets": [{"name": f"mm-{script.t}-interactions", "datasetArn": script.idata_arn, "status": "ACTIVE"}]},
        {"datasetGroupArn": script.dsg_arn},
    )
    script.ok(
        "describe_dataset",
        {"dataset": {"datasetArn": script.idata_arn, "status": "ACTIVE"}},
        {"datasetArn": script.idata_arn},
    )
    script.ok(
        "create_dataset",
        {"datasetArn": script.tdata_arn},
        {**interactions, "name": f"mm-{script.t}-items", "schemaArn": script.tschema_arn, "datasetType": "Items"},
    )
    assert personalize_run_advance(run_id=run.pk, now=now + timedelta(minutes=4)) == 60
    aws.pz.assert_no_pending_responses()
    arns = dict(RemoteResource.objects.filter(event=run.event).values_list("kind", "arn"))
    assert arns["interactions_dataset"] == script.idata_arn
    assert arns["items_dataset"] == script.tdata_arn


def test_busy_campaign_is_waited_for_not_failed(trained, world, aws, drive):
    first, script, _ = trained
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE)
    script.create_imports(run.pk)
    script.describe_imports(run.pk)
    script.create_solution_version(run.pk)
    script.describe_solution_version(run.pk)
    script.get_solution_metrics(run.pk)
    script.describe_campaign(first.pk)
    script.error(
        "update_campaign",
        "ResourceInUseException",
        "Campaign is being updated",
        params={"campaignArn": script.campaign_arn, "solutionVersionArn": script.sv_arn(run.pk)},
    )
    assert drive(run, advances=3) == [60, 300, 300]
    state = _step(run, "campaign")
    assert (state["status"], state["attempts"]) == ("waiting", 0)
    assert state["last_error"] == "UpdateCampaign: ResourceInUseException: Campaign is being updated; waiting"
    script.describe_campaign(first.pk)
    script.update_campaign(run.pk)
    script.describe_campaign(first.pk, latest={"solutionVersionArn": script.sv_arn(run.pk), "status": "ACTIVE"})
    drive(run)
    aws.pz.assert_no_pending_responses()
    assert run.status == TrainingRun.Status.SUCCEEDED


def test_s3_upload_failure_fails_the_run_with_the_reason(started, aws, drive, settings):
    run, script = started
    script.create_dataset_group()
    script.describe_dataset_group()
    script.create_schemas()
    script.create_datasets()
    script.describe_datasets()
    script.create_event_tracker()
    script.describe_event_tracker()
    settings.PERSONALIZE_BUCKET = "no-such-bucket"
    drive(run)
    aws.pz.assert_no_pending_responses()
    assert run.status == TrainingRun.Status.FAILED
    assert run.message == "PutObject: NoSuchBucket: The specified bucket does not exist"
    assert _step(run, "export")["status"] == "failed"


def test_throttling_limit_counts_retries_in_a_row_not_in_total(started, aws):
    run, script = started
    now = timezone.now()
    script.create_dataset_group()
    personalize_run_advance(run_id=run.pk, now=now)
    # Polling the group: throttled, then answered, more times in total than the limit allows in a row.
    for hour in range(1, MAX_TRANSIENT_ATTEMPTS + 2):
        script.error(
            "describe_dataset_group", "ThrottlingException", "Rate exceeded", params={"datasetGroupArn": script.dsg_arn}
        )
        personalize_run_advance(run_id=run.pk, now=now + timedelta(hours=2 * hour - 1))
        script.describe_dataset_group(status="CREATE IN_PROGRESS")
        personalize_run_advance(run_id=run.pk, now=now + timedelta(hours=2 * hour))
    aws.pz.assert_no_pending_responses()
    state = _step(run, "dataset_group")
    assert run.status == TrainingRun.Status.RUNNING
    assert (state["attempts"], state["retries"]) == (MAX_TRANSIENT_ATTEMPTS + 1, 0)
