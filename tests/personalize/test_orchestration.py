"""Schedules, the advancing task, the row lock, the configuration check, the dry-run plan and the admin."""

import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from events.enums import Backend, Phase
from recommendations.backends.personalize import clients, services, tasks
from recommendations.backends.personalize.checks import W001, check_configuration
from recommendations.backends.personalize.clients import MISSING_SETTINGS
from recommendations.backends.personalize.management.commands.personalize_plan import UNKNOWN_EVENT
from recommendations.backends.personalize.runs.machine import initial_steps, personalize_run_advance
from recommendations.backends.personalize.schedules import SWEEPER_NAME, task_names
from recommendations.models import TrainingRun
from tests.factories import LIVE_START, EventFactory, InteractionFactory, UserFactory

from .stubs import BUCKET, PREFIX

MISSING_ALL = MISSING_SETTINGS.format(names="AWS_REGION, PERSONALIZE_ROLE_ARN, PERSONALIZE_BUCKET")


@pytest.fixture
def unconfigured(settings):
    settings.AWS_REGION = ""
    settings.PERSONALIZE_ROLE_ARN = ""
    settings.PERSONALIZE_BUCKET = ""
    clients.reset()
    yield
    clients.reset()


# --- Schedules ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_schedules_created_when_an_event_uses_personalize(django_capture_on_commit_callbacks, settings):
    settings.PERSONALIZE_RETRAIN_HOURS = 4
    with django_capture_on_commit_callbacks(execute=True):
        event = EventFactory(slug="expo", backend=Backend.PERSONALIZE)
    names = task_names(event)
    retrain = PeriodicTask.objects.get(name=names["retrain"])
    assert (retrain.task, retrain.kwargs, retrain.interval.every, retrain.interval.period) == (
        "personalize.retrain_if_due",
        f'{{"event_id": {event.pk}}}',
        4,
        "hours",
    )
    assert (retrain.start_time, retrain.expires) == (event.live_starts_at, event.live_ends_at)
    batch = PeriodicTask.objects.get(name=names["batch"])
    assert (batch.task, batch.interval.every, batch.interval.period) == ("personalize.batch_if_due", 1, "days")
    assert (batch.start_time, batch.expires) == (event.live_ends_at, event.on_demand_ends_at)
    teardown = PeriodicTask.objects.get(name=names["teardown"])
    assert (teardown.task, teardown.one_off, teardown.clocked.clocked_time) == (
        "personalize.teardown_if_due",
        True,
        event.on_demand_ends_at,
    )
    assert PeriodicTask.objects.get(name=SWEEPER_NAME).task == "personalize.advance_due_runs"

    with django_capture_on_commit_callbacks(execute=True):
        event.backend = Backend.LOCAL
        event.save()
    assert set(PeriodicTask.objects.filter(name__in=names.values()).values_list("enabled", flat=True)) == {False}


@pytest.mark.django_db
def test_schedules_not_created_for_a_local_event(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        EventFactory(slug="meetup")
    assert not PeriodicTask.objects.filter(name__startswith="personalize").exists()


@pytest.mark.django_db
def test_retrain_if_due_needs_the_live_window_and_enough_new_interactions(aws, world, settings):
    settings.PERSONALIZE_RETRAIN_MIN_NEW_INTERACTIONS = 5
    during = LIVE_START + timedelta(hours=1)
    assert services.personalize_retrain_if_due(event=world.event, now=LIVE_START - timedelta(minutes=1)) is None
    assert services.personalize_retrain_if_due(event=world.event, now=world.event.live_ends_at) is None
    settings.PERSONALIZE_RETRAIN_MIN_NEW_INTERACTIONS = 6  # world has 5 training interactions
    assert services.personalize_retrain_if_due(event=world.event, now=during) is None
    InteractionFactory(attendee=world.ada, room=world.lab)
    run = services.personalize_retrain_if_due(event=world.event, now=during)
    assert (run.kind, run.trigger, run.status) == ("personalize", "schedule", "pending")
    # A run in progress: no second one.
    InteractionFactory(attendee=world.bob, room=world.lab)
    assert services.personalize_retrain_if_due(event=world.event, now=during) is None


@pytest.mark.django_db
def test_batch_if_due_only_when_on_demand(aws, world):
    assert services.personalize_batch_if_due(event=world.event) is None
    world.event.phase = Phase.ON_DEMAND
    run = services.personalize_batch_if_due(event=world.event)
    assert (run.kind, run.trigger) == ("batch", "schedule")


@pytest.mark.django_db
def test_teardown_if_due_when_closed_with_remote_resources(trained, world):
    assert services.personalize_teardown_if_due(event=world.event, now=LIVE_START) is None
    run = services.personalize_teardown_if_due(event=world.event, now=world.event.on_demand_ends_at)
    assert (run.kind, run.trigger) == ("teardown", "schedule")


# --- The task and the lock ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_advance_task_reschedules_itself_with_the_countdown(aws, world, monkeypatch):
    from recommendations.backends.personalize import mapping

    from .stubs import Script

    script = Script(aws, mapping.event_token(world.event))
    run = services.personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE)
    script.create_dataset_group()
    scheduled = []
    monkeypatch.setattr(tasks.advance_run.app.conf, "task_always_eager", False)
    monkeypatch.setattr(tasks.advance_run, "apply_async", lambda **kw: scheduled.append(kw))
    tasks.advance_run.run(run_id=run.pk)
    assert scheduled == [{"kwargs": {"run_id": run.pk}, "countdown": 60}]


@pytest.mark.django_db(transaction=True)
def test_a_run_locked_by_another_worker_is_left_alone(aws, world):
    if connection.vendor != "postgresql":
        # SQLite has no row locks: SELECT ... FOR UPDATE is a no-op there and one writer at a time
        # holds the whole database. The embedded default runs one worker, inline.
        pytest.skip("row locks exist on PostgreSQL only (SQLite serialises writers on the whole file)")
    # Made directly: starting it through the service would advance it at commit (eager mode).
    run = TrainingRun.objects.create(
        event=world.event, kind=TrainingRun.Kind.PERSONALIZE, steps=initial_steps(TrainingRun.Kind.PERSONALIZE)
    )
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            TrainingRun.objects.select_for_update().get(pk=run.pk)
            locked.set()
            release.wait(timeout=30)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        # No call queued on the Stubber: any AWS call would fail this test.
        assert personalize_run_advance(run_id=run.pk) is None
    finally:
        release.set()
        thread.join()
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.PENDING


# --- Configuration ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_backend_unavailable_without_configuration(unconfigured):
    from recommendations.backends import get_backend

    event = EventFactory(backend=Backend.PERSONALIZE)
    assert get_backend("personalize").availability(event=event) == (False, MISSING_ALL)


@pytest.mark.django_db
def test_check_warns_only_when_an_event_uses_personalize(unconfigured):
    EventFactory(slug="local-only")
    assert check_configuration() == []
    EventFactory(slug="big-one", backend=Backend.PERSONALIZE)
    [warning] = check_configuration()
    assert (warning.id, warning.level) == (W001, 30)
    assert warning.msg == f"{MISSING_ALL} Events using it fall back to the local model: big-one."


@pytest.mark.django_db
def test_manage_py_check_passes_on_the_embedded_default(unconfigured):
    call_command("check")  # raises SystemCheckError on an Error
    EventFactory(backend=Backend.PERSONALIZE)
    call_command("check")  # a Warning now, still not an Error


@pytest.mark.django_db
def test_run_start_refused_without_configuration(unconfigured):
    event = EventFactory(backend=Backend.PERSONALIZE)
    with pytest.raises(services.NotConfigured) as raised:
        services.personalize_run_start(event=event, kind=TrainingRun.Kind.PERSONALIZE)
    assert str(raised.value) == services.NOT_CONFIGURED.format(problem=MISSING_ALL)


# --- Plan ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_plan_prints_calls_and_uploads_without_calling_aws(aws, world, capsys):
    call_command("personalize_plan", event="summit")
    out = capsys.readouterr().out
    # Active Stubbers with nothing queued: any AWS call would have raised.
    assert "Configuration: complete" in out
    assert (
        "Upload: interactions.csv with 5 rows (qualifying, training-consented, from 2 attendees); "
        "items.csv with 3 rows (0 hidden)."
    ) in out
    assert "Warning: SIMS needs at least 1000 interactions to train; the solution version would fail with 5." in out
    assert "eventValueThreshold: 60 (room dwell seconds)" in out
    assert f"S3 PutObject s3://{BUCKET}/{PREFIX}<event-token>/runs/<run>/interactions.csv" in out
    assert "CreateSolution mm-<event-token>-sims recipe aws-sims" in out
    assert "DeleteDatasetGroup" in out
    from recommendations.backends.personalize.models import PersonalizeId

    assert not PersonalizeId.objects.exists()  # a dry run writes nothing either


@pytest.mark.django_db
def test_plan_unknown_event_is_one_line_error():
    with pytest.raises(CommandError) as raised:
        call_command("personalize_plan", event="nope")
    assert str(raised.value) == UNKNOWN_EVENT.format(slug="nope")


# --- Admin --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_steps_arns_and_the_failure_reason(trained, world, client):
    run, script, _ = trained
    failed = TrainingRun.objects.create(
        event=world.event,
        kind=TrainingRun.Kind.PERSONALIZE,
        status=TrainingRun.Status.FAILED,
        message="Solution version x: CREATE FAILED: not enough data",
        steps=[{"name": "dataset_group", "status": "failed", "attempts": 2, "arns": {"dataset_group": script.dsg_arn}}],
    )
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:personalize_personalizerun_changelist")).content.decode()
    assert "CREATE FAILED: not enough data" in listing
    page = client.get(reverse("admin:personalize_personalizerun_change", args=[failed.pk])).content.decode()
    assert "Solution version x: CREATE FAILED: not enough data" in page
    assert script.dsg_arn in page
    done = client.get(reverse("admin:personalize_personalizerun_change", args=[run.pk])).content.decode()
    assert script.sv_arn(run.pk) in done
    resources = client.get(reverse("admin:personalize_remoteresource_changelist")).content.decode()
    assert script.campaign_arn in resources


@pytest.mark.django_db
def test_admin_warns_when_unconfigured(unconfigured, client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:personalize_remoteresource_changelist")).content.decode()
    assert MISSING_ALL in page


@pytest.mark.django_db
def test_sweeper_advances_due_personalize_runs_only(aws, world):
    from recommendations.backends.personalize import mapping

    from .stubs import Script

    script = Script(aws, mapping.event_token(world.event))
    due = TrainingRun.objects.create(
        event=world.event, kind=TrainingRun.Kind.PERSONALIZE, steps=initial_steps(TrainingRun.Kind.PERSONALIZE)
    )
    local_batch = TrainingRun.objects.create(
        event=world.event, kind=TrainingRun.Kind.BATCH, steps=[{"name": "compute", "status": "pending"}]
    )
    script.create_dataset_group()  # the one call: the due run's first step
    tasks.advance_due_runs()  # eager: each advance runs inline
    aws.pz.assert_no_pending_responses()
    due.refresh_from_db()
    local_batch.refresh_from_db()
    assert due.steps[0]["status"] == "waiting"
    assert (local_batch.status, local_batch.steps) == ("pending", [{"name": "compute", "status": "pending"}])
    # Its poll is a minute away: the sweeper leaves it to the chain that scheduled it.
    tasks.advance_due_runs()
    aws.pz.assert_no_pending_responses()


@pytest.mark.django_db
def test_erasure_during_a_run_after_its_export_queues_one_more_run(
    aws, world, drive, django_capture_on_commit_callbacks
):
    import json

    from recommendations.backends.personalize import mapping
    from recommendations.backends.personalize.models import PersonalizeId
    from recommendations.backends.personalize.services import personalize_erase_attendee

    from .stubs import Script

    script = Script(aws, mapping.event_token(world.event))
    run = services.personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE)
    script.first_run(run.pk)
    drive(run, advances=4)  # up to the import jobs: bob is in the exported files
    bob = PersonalizeId.objects.get(event=world.event, kind="attendee", object_id=world.bob.pk).token
    aws.events.add_response(
        "put_items",
        {},
        {
            "datasetArn": script.tdata_arn,
            "items": [{"itemId": bob, "properties": json.dumps({"eventId": script.t, "visibility": "hidden"})}],
        },
    )
    assert personalize_erase_attendee(attendee=world.bob).pk == run.pk  # the run in progress
    with django_capture_on_commit_callbacks() as callbacks:
        drive(run)
    assert run.status == TrainingRun.Status.SUCCEEDED
    for callback in callbacks:  # the follow-up run, and the cache bumps of other apps' receivers
        callback()
    latest = TrainingRun.objects.filter(event=world.event).order_by("-pk").first()
    assert (latest.pk != run.pk, latest.trigger, latest.status) == (True, "erasure", "pending")


@pytest.mark.django_db
def test_admin_starts_a_first_run_from_its_own_page(aws, world, client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert (
        reverse("admin:personalize_personalizerun_start")
        in client.get(reverse("admin:personalize_personalizerun_changelist")).content.decode()
    )
    response = client.post(
        reverse("admin:personalize_personalizerun_start"), {"event": world.event.pk, "kind": "personalize"}
    )
    assert response.status_code == 302
    run = TrainingRun.objects.get(event=world.event)
    assert (run.kind, run.trigger, run.status) == ("personalize", "admin", "pending")


@pytest.mark.django_db
def test_admin_start_page_offers_only_the_organizers_events(aws, world, client):
    from django.contrib.auth.models import Permission

    organizer = UserFactory(is_staff=True)
    organizer.user_permissions.add(Permission.objects.get(codename="view_personalizerun"))
    world.event.organization.organizers.add(organizer)
    other = EventFactory(name="Someone else's summit")
    client.force_login(organizer)
    url = reverse("admin:personalize_personalizerun_start")
    response = client.post(url, {"event": other.pk, "kind": "batch"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not TrainingRun.objects.exists()
    assert client.post(url, {"event": world.event.pk, "kind": "batch"}).status_code == 302
    assert TrainingRun.objects.get().event == world.event


@pytest.mark.django_db
def test_personalize_run_command_starts_a_run(aws, world, capsys):
    call_command("personalize_run", event="summit", kind="batch")
    run = TrainingRun.objects.get(event=world.event)
    assert (run.kind, run.trigger) == ("batch", "cli")
    assert f"Run {run.pk} (Batch recommendations) for summit: pending" in capsys.readouterr().out


@pytest.mark.django_db
def test_personalize_run_command_refuses_without_configuration(unconfigured):
    EventFactory(slug="big-one", backend=Backend.PERSONALIZE)
    with pytest.raises(CommandError) as raised:
        call_command("personalize_run", event="big-one")
    assert str(raised.value) == services.NOT_CONFIGURED.format(problem=MISSING_ALL)


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("matchmaking/", "matchmaking/tok/runs/7/items.csv"),
        ("mm", "mm/tok/runs/7/items.csv"),
        ("", "tok/runs/7/items.csv"),
    ],
)
def test_s3_keys_under_any_spelling_of_the_prefix(settings, prefix, key):
    from recommendations.backends.personalize.runs.context import s3_keys

    settings.PERSONALIZE_PREFIX = prefix
    assert s3_keys(token="tok", run_id=7)["items"] == key
