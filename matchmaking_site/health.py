"""Liveness and readiness, with django-health-check's checks and runner.

- `GET /livez`: the process answers (no dependency: a database outage must not get healthy
  processes restarted).
- `GET /readyz`: every service this process needs answers: the database, each cache (Redis when
  configured: the default cache and the live-push state), the Celery broker (unless tasks run
  inline) and the channel layer (a message sent to a fresh channel comes back). 200 with each
  check's state as JSON, or 503 naming the failing ones, so a load balancer stops sending traffic
  to a process that cannot serve it.
- `GET /healthz` stays what it was (the process and the database), for existing probes.

All three are answered by `matchmaking_site.middleware.HealthCheckMiddleware` before host
validation and the HTTPS redirect: a probe calls the process by its own address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, JsonResponse

# django-health-check ships no py.typed, and pyproject's ignore_missing_imports override did not apply to it.
from health_check.base import HealthCheck  # type: ignore[import-untyped]
from health_check.checks import Cache, Database  # type: ignore[import-untyped]
from health_check.exceptions import ServiceUnavailable  # type: ignore[import-untyped]
from health_check.views import HealthCheckView  # type: ignore[import-untyped]

LIVE_PATH = "/livez"
READY_PATH = "/readyz"


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (a web process publishes tasks; it needs no worker
    to be up for that, so no worker is pinged)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    def run(self) -> None:
        from matchmaking_site.celery import app

        try:
            with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
                conn.ensure_connection(max_retries=1, timeout=self.timeout.total_seconds())
        except Exception as exc:
            raise ServiceUnavailable(f"Broker unreachable: {type(exc).__name__}") from exc


@dataclasses.dataclass
class ChannelLayer(HealthCheck):
    """The channel layer carries a message: sent to a fresh channel of this process, received back."""

    alias: str = "default"
    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    async def run(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer(self.alias)
        if layer is None:
            raise ServiceUnavailable("No channel layer configured")
        nonce = uuid.uuid4().hex
        try:
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "health.ping", "nonce": nonce})
            message = await asyncio.wait_for(layer.receive(channel), self.timeout.total_seconds())
        except Exception as exc:
            raise ServiceUnavailable(f"Channel layer unreachable: {type(exc).__name__}") from exc
        if message.get("nonce") != nonce:
            raise ServiceUnavailable("Channel layer returned another message")


def readiness_checks() -> list:
    checks: list = [Database, *((Cache, {"alias": alias}) for alias in settings.CACHES)]
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        checks.append(Broker)
    checks.append(ChannelLayer)
    return checks


class ReadinessView(HealthCheckView):
    """django-health-check's runner, always answering JSON (probes send any Accept), 503 when a
    check fails (the library's 500 would read as a bug of this process)."""

    async def get(self, request, *args, **kwargs):
        with self.get_executor() as executor:
            self.results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        failing = [str(r.check) for r in self.results if r.error]
        return JsonResponse(
            {
                "status": "unavailable" if failing else "ok",
                "checks": {str(r.check): str(r.error) if r.error else "ok" for r in self.results},
            },
            status=503 if failing else 200,
        )


def ready(request: HttpRequest):
    view = ReadinessView.as_view(checks=readiness_checks())
    return async_to_sync(view)(request)


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
