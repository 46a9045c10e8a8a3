"""A Personalize training run end to end, against Stubbers (Personalize) and moto (S3)."""

import csv
import io

import pytest

from recommendations.backends.personalize import mapping
from recommendations.backends.personalize.models import PersonalizeId, RemoteResource
from recommendations.backends.personalize.services import personalize_run_start
from recommendations.models import ModelVersion, TrainingRun

from .stubs import BUCKET, Script

pytestmark = pytest.mark.django_db

T0 = 1780564200  # 2026-06-04 09:10:00 UTC, the first interaction of `world`


def test_run_from_empty_account_to_active_campaign(trained, world):
    run, script, countdowns = trained
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert run.progress == 1.0
    # Every wait was a re-scheduled poll, never a sleep: a minute per resource, five for training.
    assert countdowns == [60, 60, 60, 60, 60, 60, 300, 60]
    assert [(s["name"], s["status"]) for s in run.steps] == [
        ("dataset_group", "done"),
        ("schemas", "done"),
        ("datasets", "done"),
        ("event_tracker", "done"),
        ("export", "done"),
        ("import", "done"),
        ("filter", "done"),
        ("solution", "done"),
        ("solution_version", "done"),
        ("gate", "done"),
        ("campaign", "done"),
    ]
    steps = {s["name"]: s for s in run.steps}
    assert steps["dataset_group"]["arns"] == {"dataset_group": script.dsg_arn}
    assert steps["import"]["arns"] == {
        "import_interactions": script.import_arn(run.pk, "interactions"),
        "import_items": script.import_arn(run.pk, "items"),
    }
    assert steps["solution_version"]["arns"] == {"solution_version": script.sv_arn(run.pk)}
    assert steps["export"]["data"]["n_interactions"] == 5
    assert steps["export"]["data"]["n_items"] == 3
    resources = {r.kind: (r.arn, r.status) for r in RemoteResource.objects.filter(event=world.event)}
    assert resources == {
        "dataset_group": (script.dsg_arn, "ACTIVE"),
        "interactions_schema": (script.ischema_arn, "ACTIVE"),
        "items_schema": (script.tschema_arn, "ACTIVE"),
        "interactions_dataset": (script.idata_arn, "ACTIVE"),
        "items_dataset": (script.tdata_arn, "ACTIVE"),
        "event_tracker": (script.tracker_arn, "ACTIVE"),
        "filter": (script.filter_arn, "ACTIVE"),
        "solution": (script.solution_arn, "ACTIVE"),
        "campaign": (script.campaign_arn, "ACTIVE"),
    }
    tracker = RemoteResource.objects.get(event=world.event, kind="event_tracker")
    assert tracker.extra["tracking_id"] == script.tracking_id
    version = ModelVersion.objects.get(event=world.event)
    assert (version.backend, version.number, version.status, version.remote_arn) == (
        "personalize",
        1,
        ModelVersion.Status.PUBLISHED,
        script.sv_arn(run.pk),
    )
    assert (version.n_interactions, version.n_attendees) == (5, 3)
    assert run.model_version == version
    # GetSolutionMetrics' figures are the version's: the dashboard and the next gate read them.
    assert {k: version.metrics[k] for k in script.METRICS} == script.METRICS
    assert steps["gate"]["data"]["publish"] is True


def _tokens(event, kind):
    return dict(PersonalizeId.objects.filter(event=event, kind=kind).values_list("object_id", "token"))


def test_run_interactions_csv_has_documented_format(trained, world, aws):
    run, script, _ = trained
    body = aws.s3.get_object(Bucket=BUCKET, Key=script.key(run.pk, "interactions.csv"))["Body"].read().decode()
    rows = list(csv.reader(io.StringIO(body)))
    people = _tokens(world.event, "attendee")
    rooms = _tokens(world.event, "room")
    content = _tokens(world.event, "content")
    interests = _tokens(world.event, "interest")
    ada, bob = people[world.ada.pk], people[world.bob.pk]
    # USER_ID is the context, ITEM_ID the attendee; TIMESTAMP in epoch seconds; EVENT_VALUE the
    # dwell, lifted to the 60 s room threshold for rows that qualified by their own rule.
    # The interaction that did not qualify and the one of the attendee who refused training are absent.
    assert rows == [
        ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"],
        [rooms[world.hall.pk], ada, str(T0), "join_room", "300"],
        [rooms[world.hall.pk], bob, str(T0 + 1), "join_room", "120"],
        [rooms[world.lab.pk], ada, str(T0 + 2), "join_room", "90"],
        [content[world.talk.pk], bob, str(T0 + 3), "view_content", "60"],
        [interests[world.tag.pk], ada, str(T0 + 4), "questionnaire", "60"],
    ]
    # Pseudonymous: nothing from our database leaks into the file.
    for secret in ("ada", "bob", "hall", "lab", "talk", "mlops", str(world.ada.pk)):
        assert secret not in {cell for row in rows[1:] for cell in row[:2]}


def test_run_items_csv_has_documented_format(trained, world, aws):
    run, script, _ = trained
    body = aws.s3.get_object(Bucket=BUCKET, Key=script.key(run.pk, "items.csv"))["Body"].read().decode()
    people = _tokens(world.event, "attendee")
    assert body.splitlines() == [
        "ITEM_ID,EVENT_ID,VISIBILITY",
        f"{people[world.ada.pk]},{script.t},visible",
        f"{people[world.bob.pk]},{script.t},visible",
        f"{people[world.cyd.pk]},{script.t},visible",
    ]


def test_retrain_updates_the_campaign_to_the_new_version(trained, world, aws, drive):
    first, script, _ = trained
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE, trigger="schedule")
    assert run.pk != first.pk
    script.retrain(run.pk, first.pk)
    countdowns = drive(run)
    aws.pz.assert_no_pending_responses()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert countdowns == [60, 300, 60]
    campaign = next(s for s in run.steps if s["name"] == "campaign")
    assert campaign["message"] == f"Campaign updated to {script.sv_arn(run.pk)}."
    versions = list(ModelVersion.objects.filter(event=world.event).order_by("number").values_list("number", "status"))
    assert versions == [(1, "superseded"), (2, "published")]
    assert ModelVersion.objects.get(number=2, event=world.event).remote_arn == script.sv_arn(run.pk)


def test_a_retrained_version_worse_than_the_serving_one_is_kept_and_the_campaign_left_alone(trained, world, aws, drive):
    """GetSolutionMetrics says the new version's precision_at_10 is below the serving version's:
    it is recorded, kept with the reason, and the campaign is neither described nor updated (the
    Stubber would fail on any call not queued here)."""
    first, script, _ = trained
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE, trigger="schedule")
    script.retrain_until_metrics(run.pk, precision_at_10=0.15)
    drive(run)
    aws.pz.assert_no_pending_responses()
    assert run.status == TrainingRun.Status.SUCCEEDED
    reason = "precision_at_10 0.1500 < serving v1's 0.2100"
    assert run.message == f"Kept v2, not published: {reason}. The campaign still serves v1 ({script.sv_arn(first.pk)})."
    steps = {s["name"]: s for s in run.steps}
    assert steps["gate"]["message"] == f"Not published: {reason}."
    assert steps["campaign"]["message"] == "Campaign left as it is: the gate kept this version."
    versions = {
        v.number: (v.status, v.not_published_reason, v.metrics["precision_at_10"])
        for v in ModelVersion.objects.filter(event=world.event)
    }
    assert versions == {1: ("published", "", 0.21), 2: ("kept", reason, 0.15)}
    assert RemoteResource.objects.get(event=world.event, kind="campaign").extra["solution_version"] == script.sv_arn(
        first.pk
    )


def test_a_version_below_the_local_model_on_the_event_s_data_is_kept(aws, rich_world, drive):
    """The first version has nothing serving to beat, but it must beat what the local model scores
    on the same event's data; below it, no campaign is created and the local figure is recorded."""
    from recommendations.backends.local.fit import local_reference_metrics

    local = local_reference_metrics(event=rich_world)["precision_at_10"]
    assert local > 0.05  # the event holds something out: the comparison is real
    script = Script(aws, mapping.event_token(rich_world))
    run = personalize_run_start(event=rich_world, kind=TrainingRun.Kind.PERSONALIZE)
    script.first_run_until_metrics(run.pk, precision_at_10=round(local - 0.05, 4))
    drive(run)
    aws.pz.assert_no_pending_responses()
    assert run.status == TrainingRun.Status.SUCCEEDED
    version = ModelVersion.objects.get(event=rich_world)
    assert version.status == ModelVersion.Status.KEPT
    assert version.not_published_reason == (
        f"precision_at_10 {local - 0.05:.4f} < the local model's {local:.4f} on this event's own split"
    )
    assert version.metrics["local_precision_at_10"] == local
    assert not RemoteResource.objects.filter(event=rich_world, kind="campaign").exclude(arn="").exists()
    assert run.message.endswith("The campaign still serves nothing (no version has passed yet).")

    # The same data and a version that matches the local model: it serves.
    again = personalize_run_start(event=rich_world, kind=TrainingRun.Kind.PERSONALIZE)
    script.retrain_until_metrics(again.pk, precision_at_10=local)
    script.create_campaign(again.pk)
    script.describe_campaign(again.pk)
    drive(again)
    aws.pz.assert_no_pending_responses()
    assert again.model_version.status == ModelVersion.Status.PUBLISHED


def test_run_start_twice_returns_the_run_in_progress(aws, world):
    first = personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE)
    again = personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE)
    assert again.pk == first.pk
    assert TrainingRun.objects.filter(event=world.event).count() == 1
