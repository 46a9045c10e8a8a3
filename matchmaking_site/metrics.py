"""Prometheus metrics (prometheus_client): every request's latency by route, method and status class
(`RequestLogMiddleware` observes it; the fast path is labelled with the route it stands in for),
open WebSockets, Celery task durations, and, read from the database when scraped, the ingestion
outbox's backlog and the training runs. WHY not django-prometheus's middleware: it records a dozen
series per request, and cost a fifth of the warm suggestions request's throughput
(benchmarks/fastpath.py: 316 against 392 req/s); one histogram costs about 2 microseconds.

`GET /metrics` (answered by `matchmaking_site.middleware.HealthCheckMiddleware`, before host
validation, like the probes) needs ``Authorization: Bearer <METRICS_TOKEN>``; without a token set it
is open in development and absent (404) in production. With several processes per host (uvicorn
``--workers``, Celery's prefork pool), set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared
by them (prometheus_client's multiprocess mode): every process writes its samples there and a scrape
of any one sums them. A Celery worker has no web server: with ``CELERY_METRICS_PORT`` set it serves
its metrics on that port (`start_worker_exporter`).
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"

REQUEST_SECONDS = Histogram(
    "matchmaking_http_request_seconds",
    "Request latency inside Django's middleware chain, by route (the URL pattern's name), method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBSOCKETS = Gauge(
    "matchmaking_websocket_connections",
    "Open WebSocket connections, by consumer.",
    ["consumer"],
    multiprocess_mode="livesum",
)
WEBSOCKETS_OPENED = Counter(
    "matchmaking_websocket_connections_opened",
    "WebSocket connections accepted, by consumer.",
    ["consumer"],
)
TASK_SECONDS = Histogram(
    "matchmaking_task_seconds",
    "Celery task run time, by task and outcome (success, failure, retry).",
    ["task", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
TASK_QUEUED_SECONDS = Histogram(
    "matchmaking_task_queued_seconds",
    "Time from a task's publication to the start of its run, by task.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class DatabaseState(Collector):
    """Read from the database when scraped, so any web process reports the same: the ingestion
    outbox (interactions stored but not yet processed, and the oldest one's age) and the training
    runs by kind and status with the last finished run's duration per kind."""

    def collect(self):
        from django.db import DatabaseError

        try:
            families = list(self._read())
        except DatabaseError:
            logger.warning("metrics: the database could not be read", exc_info=True)
            families = []
        yield GaugeMetricFamily(
            "matchmaking_database_metrics_up",
            "1 when the database-derived metrics could be read.",
            value=int(bool(families)),
        )
        yield from families

    def _read(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from events.models import Interaction
        from recommendations.models import TrainingRun

        pending = Interaction.objects.filter(processed_at__isnull=True)
        backlog = pending.aggregate(n=Count("pk"), oldest=Min("created_at"))
        yield GaugeMetricFamily(
            "matchmaking_outbox_backlog", "Interactions stored but not processed yet.", value=backlog["n"]
        )
        oldest = backlog["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "matchmaking_outbox_oldest_seconds", "Age of the oldest unprocessed interaction (0: none).", value=age
        )
        runs = GaugeMetricFamily(
            "matchmaking_training_runs", "Training runs in the database, by kind and status.", labels=["kind", "status"]
        )
        for row in TrainingRun.objects.values("kind", "status").annotate(n=Count("pk")).order_by("kind", "status"):
            runs.add_metric([row["kind"], row["status"]], row["n"])
        yield runs
        last = GaugeMetricFamily(
            "matchmaking_training_last_run_seconds",
            "Duration of the last finished run of each kind.",
            labels=["kind"],
        )
        finished = TrainingRun.objects.filter(finished_at__isnull=False, started_at__isnull=False)
        for kind in TrainingRun.Kind.values:
            run = finished.filter(kind=kind).order_by("-finished_at").only("started_at", "finished_at").first()
            if run is not None:
                last.add_metric([kind], (run.finished_at - run.started_at).total_seconds())
        yield last


def process_registry() -> CollectorRegistry:
    """This process's metrics, or in multiprocess mode every process's (read from their files)."""
    if not multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def exposition() -> bytes:
    """The text a scrape gets: the processes' metrics (`process_registry`), then the database's."""
    registry = process_registry()
    database = CollectorRegistry()
    database.register(DatabaseState())
    return generate_latest(registry) + generate_latest(database)


def token_ok(request: HttpRequest) -> bool | None:
    """True when the request carries the metrics token; None when no token is configured."""
    token = settings.METRICS_TOKEN
    if not token:
        return None
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    allowed = token_ok(request)
    if allowed is None and not settings.DEBUG:
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    if allowed is False:
        response = HttpResponse("A bearer token is required.", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)


# --- Celery ----------------------------------------------------------------------------------------

_started: dict[str, float] = {}


def _task_prerun(task_id=None, task=None, **kwargs):
    _started[task_id] = time.perf_counter()
    # A message header becomes an attribute of the task's request (Celery's protocol 2).
    sent = getattr(task.request, "mm_published_at", None) if task is not None else None
    if isinstance(sent, int | float):
        TASK_QUEUED_SECONDS.labels(task.name).observe(max(0.0, time.time() - sent))


def _task_postrun(task_id=None, task=None, state=None, **kwargs):
    started = _started.pop(task_id, None)
    if started is None or task is None:
        return
    outcome = {"SUCCESS": "success", "RETRY": "retry"}.get(state or "", "failure")
    TASK_SECONDS.labels(task.name, outcome).observe(time.perf_counter() - started)


def _before_publish(headers=None, **kwargs):
    if headers is not None:
        headers["mm_published_at"] = time.time()


def connect_celery_signals() -> None:
    from celery import signals

    signals.task_prerun.connect(_task_prerun, weak=False)
    signals.task_postrun.connect(_task_postrun, weak=False)
    signals.before_task_publish.connect(_before_publish, weak=False)
    signals.worker_init.connect(start_worker_exporter, weak=False)
    signals.worker_process_shutdown.connect(_child_exit, weak=False)


def _child_exit(pid=None, **kwargs):
    # A prefork child's live gauges leave the sum with it (multiprocess mode only).
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid or os.getpid())


def start_worker_exporter(**kwargs) -> None:
    """A worker's metrics on ``CELERY_METRICS_PORT`` (nothing when unset)."""
    port = os.environ.get("CELERY_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    addr = os.environ.get("CELERY_METRICS_ADDR", "0.0.0.0")
    start_http_server(int(port), addr=addr, registry=process_registry())
    logger.info("worker metrics on port %s", port)
