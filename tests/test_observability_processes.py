"""The request id and the metrics across real processes: an ASGI server and a Celery worker (its
prefork pool, in prometheus_client's multiprocess mode) on the test database and Redis. A request's
id is on the server's access line and on the worker's lines for the task that request enqueued;
the worker serves its task metrics on its own port; the server's scrape counts the request by
its route."""

import json
import uuid
from datetime import timedelta

import pytest
from django.conf import settings

from events.models import Interaction
from events.services import api_key_create
from tests.factories import AttendeeFactory, EventFactory, RoomFactory
from tests.faults.conftest import celery_worker, process_env, wait_for
from tests.live import asgi_server, free_port, http, metric_sample

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="a worker in another process needs a broker: Redis"),
]


def _json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def test_a_requests_id_reaches_the_task_it_enqueued_and_both_processes_report_metrics(tmp_path):
    event = EventFactory(slug="observed")
    ada = AttendeeFactory(event=event, external_id="ada")
    room = RoomFactory(event=event, external_id="hall")
    _, key = api_key_create(organization=event.organization, name="platform")
    worker_port = free_port()
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = process_env(
        LOG_FORMAT="json",
        ACCESS_LOG="true",
        LOG_LEVEL="INFO",
        METRICS_TOKEN="scraper",
        THROTTLE_INGEST="1000000/min",
    )
    worker_env = {**env, "CELERY_METRICS_PORT": str(worker_port), "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    request_id = str(uuid.uuid4())
    body = {
        "interactions": [
            {
                "client_event_id": "observed-1",
                "attendee_id": ada.external_id,
                "context_kind": "room",
                "context_id": room.external_id,
                "type": "join_room",
                "value": 300,
                "occurred_at": (event.live_starts_at + timedelta(hours=1)).isoformat(),
            }
        ]
    }
    with asgi_server(env, log=server_log) as base, celery_worker(worker_env, "observed", worker_log):
        status, answer = http(
            "POST",
            f"{base}/api/v1/events/{event.slug}/interactions/",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": f"Api-Key {key}", "X-Request-ID": request_id},
        )
        assert status == 200, answer[:300]
        wait_for(lambda: Interaction.objects.filter(event=event, processed_at__isnull=False).exists(), timeout=90)
        worker_metrics = wait_for(
            lambda: (
                (text := http("GET", f"http://127.0.0.1:{worker_port}/metrics")[1].decode())
                and metric_sample(
                    text, "matchmaking_task_seconds_count", task="events.process_interactions", outcome="success"
                )
                and text
            ),
            timeout=30,
        )
        status, scraped = http("GET", f"{base}/metrics", headers={"Authorization": "Bearer scraper"})
        assert status == 200
        assert http("GET", f"{base}/metrics")[0] == 401

    queued = metric_sample(worker_metrics, "matchmaking_task_queued_seconds_count", task="events.process_interactions")
    assert (queued or 0) >= 1
    route = "api:interaction-batch"
    served = metric_sample(scraped.decode(), "matchmaking_http_request_seconds_count", route=route, method="POST")
    assert (served or 0) >= 1

    access = [r for r in _json_lines(server_log.read_text()) if r.get("logger") == "matchmaking.access"]
    ingest = [r for r in access if r["path"] == f"/api/v1/events/{event.slug}/interactions/"]
    assert [(r["request_id"], r["status"], r["route"]) for r in ingest] == [(request_id, 200, route)]
    in_worker = [r for r in _json_lines(worker_log.read_text()) if r.get("request_id") == request_id]
    assert in_worker, worker_log.read_text()[-3000:]
    assert any("events.process_interactions" in r["message"] for r in in_worker)
