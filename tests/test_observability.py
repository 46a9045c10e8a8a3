"""Eyes on production: request ids in JSON logs that reach the Celery tasks a request enqueued,
Prometheus metrics (the web process's and a worker's), liveness and readiness that fail when a
service does, and error reports to Sentry carrying the request id."""

import json
import uuid

import pytest
import sentry_sdk
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.urls import path
from prometheus_client import REGISTRY

from events.api.auth import attendee_token_issue
from matchmaking_site.asgi import application
from matchmaking_site.sentry import init_sentry
from recommendations.models import TrainingRun
from tests.factories import AttendeeFactory, EventFactory, InteractionFactory
from tests.live import free_port, metric_sample

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CLOSED = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


@pytest.fixture
def scrape(settings):
    settings.METRICS_TOKEN = "scraper"

    def get() -> str:
        response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scraper")
        assert response.status_code == 200, response.content[:300]
        return response.content.decode()

    return get


# --- Request ids ------------------------------------------------------------------------------------


def test_the_request_id_sent_is_returned_and_a_missing_or_forged_one_is_replaced(db):
    c = Client()
    assert c.get("/", HTTP_X_REQUEST_ID=UUID)["X-Request-ID"] == UUID
    made = c.get("/")["X-Request-ID"]
    assert uuid.UUID(made)
    forged = c.get("/", HTTP_X_REQUEST_ID='x"\n{"level": "CRITICAL"}')["X-Request-ID"]
    assert uuid.UUID(forged) and "\n" not in forged


def test_every_line_a_request_logs_is_json_with_its_request_id(db, caplog):
    """The handler's formatter and filter as settings configure them (LOG_FORMAT=json), on the
    records a request produces: the access line and Django's own warning for the 404."""
    import logging.config

    from django.conf import settings

    config = json.loads(json.dumps(settings.LOGGING))
    config["handlers"]["console"]["formatter"] = "json"
    config["loggers"]["matchmaking.access"]["level"] = "INFO"
    logging.config.dictConfig(config)
    handler = logging.getLogger().handlers[0]
    lines: list[str] = []
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    try:
        Client().get("/nowhere/", HTTP_X_REQUEST_ID=UUID)
    finally:
        logging.config.dictConfig(settings.LOGGING)
    records = [json.loads(line) for line in lines]
    assert records, "nothing was logged"
    assert {r["request_id"] for r in records} == {UUID}
    access = next(r for r in records if r["logger"] == "matchmaking.access")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/nowhere/", 404)
    assert access["duration_ms"] >= 0 and access["level"] == "INFO"


# --- Metrics ----------------------------------------------------------------------------------------


def test_metrics_need_the_token_and_are_absent_in_production_without_one(db, settings):
    settings.METRICS_TOKEN = "s3cret"
    c = Client()
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert c.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    assert c.get("/metrics").status_code == 404


def test_a_scrape_by_address_is_not_turned_away_by_host_validation(db, settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["matchmaking.example"]
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_TOKEN = "s3cret"
    c = Client(HTTP_HOST="10.0.3.7:8000")
    assert c.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    assert c.get("/readyz").status_code == 200
    assert c.get("/livez").status_code == 200
    assert c.get("/").status_code == 400  # everything else is still validated


def test_request_latency_is_counted_by_route(db):
    before = REGISTRY.get_sample_value(
        "matchmaking_http_request_seconds_count", {"route": "home", "method": "GET", "status": "2xx"}
    )
    Client().get("/")
    after = REGISTRY.get_sample_value(
        "matchmaking_http_request_seconds_count", {"route": "home", "method": "GET", "status": "2xx"}
    )
    assert after == (before or 0) + 1


def test_the_outbox_backlog_and_training_runs_are_read_from_the_database(db, scrape):
    event = EventFactory()
    ada = AttendeeFactory(event=event)
    from django.utils import timezone

    InteractionFactory(attendee=ada, processed_at=timezone.now())
    InteractionFactory.create_batch(2, attendee=ada, processed_at=None)
    TrainingRun.objects.create(event=event, status=TrainingRun.Status.FAILED)
    now = timezone.now()
    TrainingRun.objects.create(
        event=event,
        status=TrainingRun.Status.SUCCEEDED,
        started_at=now - timezone.timedelta(seconds=7),
        finished_at=now,
    )
    text = scrape()
    assert metric_sample(text, "matchmaking_outbox_backlog") == 2
    assert metric_sample(text, "matchmaking_outbox_oldest_seconds") >= 0
    assert metric_sample(text, "matchmaking_training_runs", kind="train", status="failed") == 1
    assert metric_sample(text, "matchmaking_training_runs", kind="train", status="succeeded") == 1
    assert metric_sample(text, "matchmaking_training_last_run_seconds", kind="train") == pytest.approx(7, abs=0.01)
    assert metric_sample(text, "matchmaking_database_metrics_up") == 1


@pytest.fixture
async def close_thread_connections():
    """The consumer's ORM calls run in asgiref's thread, whose connection would outlive the test
    and block dropping the test database."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def attendee(transactional_db, close_thread_connections):
    return AttendeeFactory(event=EventFactory(slug="metrics-ws"), external_id="ada")


def _open_sockets() -> float:
    return REGISTRY.get_sample_value("matchmaking_websocket_connections", {"consumer": "suggestions"}) or 0.0


async def test_open_websockets_are_counted_while_open(attendee):
    token = await sync_to_async(attendee_token_issue)(attendee=attendee)
    before = _open_sockets()
    socket = WebsocketCommunicator(
        application,
        f"/ws/events/metrics-ws/suggestions/?token={token}",
        headers=[(b"origin", b"http://localhost:8000")],
    )
    connected, _ = await socket.connect()
    assert connected
    await socket.receive_json_from(timeout=10)  # the hello
    assert _open_sockets() == before + 1
    await socket.disconnect()
    assert _open_sockets() == before


async def test_a_refused_websocket_is_not_counted(attendee):
    before = _open_sockets()
    socket = WebsocketCommunicator(
        application, "/ws/events/metrics-ws/suggestions/?token=forged", headers=[(b"origin", b"http://localhost:8000")]
    )
    connected, _ = await socket.connect()
    assert not connected
    assert _open_sockets() == before


# --- Liveness and readiness -------------------------------------------------------------------------


def test_ready_names_every_service_it_checked(db):
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    names = " ".join(body["checks"])
    assert "Database" in names and "ChannelLayer" in names and "Cache(alias='live')" in names


def test_not_ready_when_the_channel_layer_is_down(db, settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "matchmaking_site.layer.WaitingPoolRedisChannelLayer", "CONFIG": {"hosts": [CLOSED]}}
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        response = Client().get("/readyz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "Channel layer unreachable" in body["checks"]["ChannelLayer(alias='default')"]
    assert body["checks"]["Database(alias='default')"] == "ok"


def test_not_ready_when_the_broker_is_down(db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = CLOSED
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "Broker unreachable" in response.json()["checks"]["Broker()"]


def test_not_ready_when_a_cache_is_down(db, settings):
    settings.CACHES = {
        **settings.CACHES,
        "live": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CLOSED,
            "OPTIONS": {"socket_connect_timeout": 0.2},
        },
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["Cache(alias='live')"] != "ok"


def test_alive_needs_nothing_but_the_process(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert Client().get("/livez").status_code == 200
    assert len(queries) == 0


# --- Sentry -----------------------------------------------------------------------------------------


def _boom(request):
    raise RuntimeError("kaboom")


urlpatterns = [path("boom/", _boom)]


@pytest.mark.urls("tests.test_observability")
def test_an_unhandled_error_reaches_sentry_with_the_request_id_and_no_personal_data(db, settings):
    sent: list[dict] = []

    class Transport(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope):
            for item in envelope.items:
                if item.type == "event":
                    sent.append(item.payload.json)

    settings.SENTRY_DSN = "https://public@sentry.example/1"
    init_sentry(dsn=settings.SENTRY_DSN, environment="test", transport=Transport)
    try:
        c = Client(raise_request_exception=False)
        c.cookies["sessionid"] = "secret-session"
        assert c.get("/boom/", HTTP_X_REQUEST_ID=UUID).status_code == 500
        sentry_sdk.flush()
    finally:
        sentry_sdk.init()  # no DSN: off again
    assert len(sent) == 1
    event = sent[0]
    assert event["exception"]["values"][-1]["value"] == "kaboom"
    assert event["tags"]["request_id"] == UUID
    assert "secret-session" not in json.dumps(event)
