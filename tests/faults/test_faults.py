"""Faults with real services: each test starts the processes it needs, breaks one, and checks
what the issue promises. They are slower than the rest (tens of seconds each) and run in `make test`."""

import json
import subprocess
import time
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.utils import timezone

from events.models import Attendee, Event, Interaction
from events.services import api_key_create
from matchmaking_site.celery import app as celery_app
from matchmaking_site.middleware import DATABASE_UNAVAILABLE
from recommendations.jobs.runs import WORKER_LOST, training_runs_fail_stale
from recommendations.jobs.training import run_training
from recommendations.models import ModelVersion, TrainingRun
from recommendations.serving.lists import recommendations_for
from tests.live import ROOT, asgi_server, current_database_url, free_port, http

from .conftest import BIN, celery_worker, kill, process_env, throwaway_redis, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]
START = "2026-06-04T09:00:00Z"


def post_batch(base: str, key: str, event: Event, prefix: str, n: int) -> dict:
    attendees = list(Attendee.objects.filter(event=event).order_by("pk").values_list("external_id", flat=True))
    room = event.rooms.order_by("pk").first().external_id
    items = [
        {
            "client_event_id": f"{prefix}-{i}",
            "attendee_id": attendees[i % len(attendees)],
            "context_kind": "room",
            "context_id": room,
            "type": "join_room",
            "value": 300,
            "occurred_at": (event.live_starts_at + timedelta(hours=1, seconds=i)).isoformat(),
        }
        for i in range(n)
    ]
    status, body = http(
        "POST",
        f"{base}/api/v1/events/{event.slug}/interactions/",
        json.dumps({"interactions": items}).encode(),
        {"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
    )
    assert status == 200, body[:500]
    return json.loads(body)


def test_redis_stopped_during_ingestion_loses_nothing_and_processes_once(tmp_path, settings):
    settings.THROTTLE_INGEST = "1000000/min"
    call_command("seed_demo", slug="faults", attendees=20, start=START, verbosity=0)
    event = Event.objects.get(slug="faults")
    event.refresh_from_db()
    _, key = api_key_create(organization=event.organization, name="faults")
    seeded = Interaction.objects.filter(event=event).count()
    Interaction.objects.filter(event=event).update(processed_at=timezone.now())  # only ours matter

    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    env = process_env(DATABASE_URL=current_database_url(), REDIS_URL=redis_url, THROTTLE_INGEST="1000000/min")
    log = tmp_path / "processes.log"
    with asgi_server(env, log=log) as base:
        with throwaway_redis(port) as redis_proc:
            before = post_batch(base, key, event, "before", 50)
            redis_proc.terminate()
            redis_proc.wait()
            during = post_batch(base, key, event, "during", 50)  # Redis (cache, broker, layer) is down
        assert [r["status"] for r in before["results"]] == ["accepted"] * 50
        assert [r["status"] for r in during["results"]] == ["accepted"] * 50
        ours = Interaction.objects.filter(event=event, client_event_id__regex=r"^(before|during)-")
        assert ours.count() == 100
        assert Interaction.objects.filter(event=event).count() == seeded + 100

        with throwaway_redis(port), celery_worker(env, "faults", log):
            # Redis came back empty (nothing persisted): the outbox sweeper finds what the lost
            # messages were for.
            sender = celery_app.__class__(broker=redis_url, set_as_current=False)
            sender.send_task("events.sweep_interactions", kwargs={"grace_seconds": 0})
            wait_for(lambda: not ours.filter(processed_at__isnull=True).exists(), timeout=90)
            stamps = dict(ours.values_list("pk", "processed_at"))
            sender.send_task("events.sweep_interactions", kwargs={"grace_seconds": 0})
            time.sleep(3)
    assert dict(ours.values_list("pk", "processed_at")) == stamps  # none processed twice
    assert len(stamps) == 100


def test_worker_killed_mid_training_previous_model_keeps_serving(tmp_path, settings):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    call_command("seed_demo", slug="faults", attendees=120, start=START, verbosity=0)
    event = Event.objects.get(slug="faults")
    Event.objects.filter(pk=event.pk).update(phase="live")
    first = run_training(event=event, trigger="test")
    v1 = first.model_version
    assert (first.status, v1.status) == ("succeeded", "published")
    # New data, so the next run really trains; and a low serving metric, so its gate will publish.
    viewer = Attendee.objects.filter(event=event).order_by("pk").first()
    Interaction.objects.filter(event=event, attendee=viewer).update(value=3000.0)
    ModelVersion.objects.filter(pk=v1.pk).update(metrics={"recall@10": 0.0})
    served_before = recommendations_for(attendee=viewer, use_cache=False)
    assert (served_before.source, served_before.model_version) == ("local", v1.number)

    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    env = process_env(
        DATABASE_URL=current_database_url(), REDIS_URL=broker, MODEL_ARTIFACT_ROOT=str(settings.MODEL_ARTIFACT_ROOT)
    )
    log = tmp_path / "worker.log"
    # Hold the serving version's row: the worker's gate blocks on it after its fit, i.e. mid-run.
    side = psycopg.connect(current_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    side.execute("SELECT id FROM recommendations_modelversion WHERE id = %s FOR UPDATE", [v1.pk])
    with throwaway_redis(port):
        sender = celery_app.__class__(broker=broker, set_as_current=False)
        with celery_worker(env, "doomed", log) as worker:
            sender.send_task("recommendations.train_event", kwargs={"event_id": event.pk, "trigger": "manual"})
            run = wait_for(
                lambda: (
                    TrainingRun.objects.filter(event=event, steps__contains=[{"name": "fit"}])
                    .exclude(pk=first.pk)
                    .first()
                ),
                timeout=120,
            )
            kill(worker)
        side.rollback()
        side.close()

        run.refresh_from_db()
        assert run.status == "running"  # the worker died with it
        assert ModelVersion.objects.filter(event=event).count() == 1  # its version never committed
        served = recommendations_for(attendee=viewer, use_cache=False)
        assert (served.source, served.model_version) == ("local", v1.number)

        assert (
            training_runs_fail_stale(
                now=timezone.now() + timedelta(seconds=settings.RECOMMENDATION_STALE_RUN_SECONDS + 1)
            )
            == 1
        )
        run.refresh_from_db()
        assert run.status == "failed"
        assert run.message == WORKER_LOST.format(minutes=settings.RECOMMENDATION_STALE_RUN_SECONDS / 60)

        # Another worker trains again from the database, and its version takes over.
        with celery_worker(env, "healthy", log):
            sender.send_task("recommendations.train_event", kwargs={"event_id": event.pk, "trigger": "manual"})
            wait_for(
                lambda: ModelVersion.objects.filter(event=event, number=2, status="published").exists(), timeout=120
            )
    assert recommendations_for(attendee=viewer, use_cache=False).model_version == 2


def test_postgres_restart_fails_cleanly_and_recovers_without_app_restart(tmp_path, throwaway_postgres):
    env = process_env(DATABASE_URL=throwaway_postgres.url, REDIS_URL="")
    env.pop("REDIS_URL")
    manage = [str(BIN / "python"), "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*manage, "seed_demo", "--attendees", "5", "--start", START, "-v", "0"], cwd=ROOT, env=env, check=True
    )
    key = subprocess.run(
        [*manage, "create_api_key", "--organization", "demo-org", "--name", "f"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    headers = {"Authorization": f"Api-Key {key}"}
    with asgi_server(env, log=tmp_path / "server.log") as base:
        assert http("GET", f"{base}/api/v1/events/", headers=headers)[0] == 200
        throwaway_postgres.stop()
        status, body = http("GET", f"{base}/api/v1/events/", headers=headers)
        assert (status, json.loads(body)) == (503, {"detail": DATABASE_UNAVAILABLE})
        status, body = http("GET", f"{base}/healthz")
        assert status == 503
        assert json.loads(body)["status"] == "unavailable"
        throwaway_postgres.start()
        # The same server process, no restart: the next request reconnects.
        assert wait_for(lambda: http("GET", f"{base}/api/v1/events/", headers=headers)[0] == 200, timeout=30)
        assert http("GET", f"{base}/healthz")[0] == 200
