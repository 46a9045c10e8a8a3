"""Webhooks: the platform hears when something it must act on happened (a connection accepted, a
meeting booked), signed, retried, delivered at least once.

- **At least once.** `webhook_enqueue` writes one `WebhookDelivery` per subscribed endpoint in the
  transaction of what it reports, so a committed change always has its deliveries, and a rolled
  back one has none. The first attempt is a task enqueued after commit; the periodic sweeper
  (`events.send_due_webhooks`) sends whatever is due, which covers retries and any task the broker
  lost. A message is sent again until the endpoint answers 2xx, so it may arrive twice: every attempt
  carries the same `webhook-id` for the platform to drop repeats.
- **Signed** by the Standard Webhooks scheme (the `standardwebhooks` package, which platforms can use
  to verify): headers `webhook-id`, `webhook-timestamp` and `webhook-signature` = "v1," + base64 of
  HMAC-SHA256 over "{id}.{timestamp}.{body}" with the endpoint's secret.
- **Backoff.** After failed attempt n the next waits BACKOFF_BASE x 2^(n-1), at most BACKOFF_MAX; after
  MAX_ATTEMPTS (about a day) the delivery is given up, visible in the admin, where it can be retried.
  A failing endpoint's new deliveries wait for its backoff too (`WebhookEndpoint.failing_until`), so a
  dead endpoint costs one timeout per step, not one per message.
- **One sender at a time.** An attempt first takes a lease on the row (a conditional UPDATE pushing
  `next_attempt_at` past the timeout): the task and the sweeper never send the same message at once.
- **Only out to the internet.** The server posts where an API key (or an organizer) said: the
  connection itself resolves the host, and an address that is loopback, private, link-local or
  otherwise not global fails the attempt without connecting (`WEBHOOK_ALLOW_PRIVATE_ADDRESSES` lets
  an installation post inside its own network). The check and the connection use one resolution,
  so a name that answers outward to a check and inward a moment later (DNS rebinding) is refused
  too; TLS still verifies the certificate against the host's name. Redirects are not followed: a 3xx
  is a failed attempt, so a public address cannot forward the request inward. Proxies from the
  environment are not used (the connection goes to the endpoint itself).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks import Webhook

from .models import Connection, Event, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

CONNECTION_ACCEPTED = "connection.accepted"
MEETING_BOOKED = "meeting.booked"
KINDS = (CONNECTION_ACCEPTED, MEETING_BOOKED)

MAX_ATTEMPTS = 12
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
SWEEP_BATCH = 100  # due deliveries sent per sweep, at most
USER_AGENT = "matchmaking-webhooks/1"


def backoff(attempts: int) -> timedelta:
    """How long to wait after `attempts` failed attempts."""
    return min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_MAX)


def webhook_enqueue(*, event: Event, kind: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """One delivery per active endpoint of the event's organization that wants `kind`, written in
    the caller's transaction; each is sent after commit."""
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(organization_id=event.organization_id, active=True)
        if not e.kinds or kind in e.kinds
    ]
    if not endpoints:
        return []
    now = timezone.now()
    deliveries = []
    for endpoint in endpoints:
        message_id = f"msg_{uuid.uuid4().hex}"
        payload = {"id": message_id, "type": kind, "timestamp": now, "event": event.slug, "data": data}
        deliveries.append(
            WebhookDelivery(
                endpoint=endpoint,
                event=event,
                message_id=message_id,
                kind=kind,
                payload=json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
                next_attempt_at=now,
            )
        )
    WebhookDelivery.objects.bulk_create(deliveries)
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _send_soon(ids))
    return deliveries


def _send_soon(ids: list[int]) -> None:
    from .tasks import send_webhook  # tasks import this module

    for pk in ids:
        try:
            send_webhook.delay(delivery_id=pk)
        except Exception:  # the broker is down: the sweeper sends it
            logger.warning("Could not enqueue webhook delivery %s; the sweeper will send it.", pk, exc_info=True)


def connection_accepted(*, connection: Connection) -> list[WebhookDelivery]:
    """`connection.accepted`, in the transaction that accepted it."""
    return webhook_enqueue(
        event=connection.event,
        kind=CONNECTION_ACCEPTED,
        data={
            "connection": {
                "id": connection.pk,
                "requester": connection.requester.external_id,
                "recipient": connection.recipient.external_id,
                "status": connection.status,
                "created_at": connection.created_at,
                "responded_at": connection.responded_at,
            }
        },
    )


def meeting_booked(*, meeting) -> list[WebhookDelivery]:
    """`meeting.booked`, in the transaction that booked it."""
    place = meeting.place
    return webhook_enqueue(
        event=meeting.event,
        kind=MEETING_BOOKED,
        data={
            "meeting": {
                "id": meeting.pk,
                "requester": meeting.requester.external_id,
                "recipient": meeting.recipient.external_id,
                "starts_at": meeting.starts_at,
                "ends_at": meeting.ends_at,
                "place": None if place is None else {"name": place.name, "url": place.url},
            }
        },
    )


def _lease(delivery_id: int, now: datetime) -> bool:
    """Take the row for one attempt: only a pending delivery that is due, once."""
    until = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 5)
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=until)
    )


def webhook_send(*, delivery_id: int, now: datetime | None = None, first: bool = False) -> str:
    """One attempt at a due delivery; returns its status after it (or "skipped" when it was not
    due, taken by another sender, or `first` and its endpoint is failing: the sweeper retries)."""
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return "skipped"
    endpoint = delivery.endpoint
    if first and endpoint.failing_until and endpoint.failing_until > now:
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).update(
            next_attempt_at=endpoint.failing_until
        )
        return "skipped"
    if not _lease(delivery_id, now):
        return "skipped"
    code, error = _post(endpoint, delivery)
    attempts = delivery.attempts + 1
    done = timezone.now()
    if code is not None and 200 <= code < 300:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=WebhookDelivery.Status.DELIVERED,
            attempts=attempts,
            last_status_code=code,
            last_error="",
            delivered_at=done,
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_until=None)
        return WebhookDelivery.Status.DELIVERED
    gave_up = attempts >= MAX_ATTEMPTS
    retry_at = done + backoff(attempts)
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=WebhookDelivery.Status.FAILED if gave_up else WebhookDelivery.Status.PENDING,
        attempts=attempts,
        last_status_code=code,
        last_error=error[:300],
        next_attempt_at=retry_at,
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_until=retry_at)
    logger.info("Webhook %s to %s failed (attempt %d): %s", delivery.message_id, endpoint.url, attempts, error)
    return WebhookDelivery.Status.FAILED if gave_up else WebhookDelivery.Status.PENDING


PRIVATE_ADDRESS = "refused: {host} resolves to {ip}, not a public address (WEBHOOK_ALLOW_PRIVATE_ADDRESSES)"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx: a failed attempt


class _Refused(OSError):
    """The host resolved to an address webhooks may not reach (its text is the attempt's error)."""


def _public_connection(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
    """`socket.create_connection` for webhook attempts: resolve once, refuse the host if any of its
    addresses is not global (unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES), connect to those addresses.
    (`http.client` passes a sentinel object as `timeout` when none is set; every attempt sets one.)"""
    host, port = address
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if not ip.is_global:
                raise _Refused(PRIVATE_ADDRESS.format(host=host, ip=ip))
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)  # the vetted address itself, not the name again
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"{host} has no address")


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)


_OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _PublicHTTPHandler, _PublicHTTPSHandler, _NoRedirects
)


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the signed message; (HTTP status or None, what went wrong or "")."""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    sent_at = timezone.now()
    request = urllib.request.Request(
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(endpoint.secret).sign(delivery.message_id, sent_at, body),
        },
    )
    try:
        with _OPENER.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, _Refused):
            return None, str(exc.reason)
        return None, f"{type(exc).__name__}: {exc.reason}"
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


def webhooks_send_due(*, now: datetime | None = None) -> int:
    """The sweeper: send up to SWEEP_BATCH due deliveries (retries, and first attempts whose task
    was lost). Returns how many it attempted."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    tried = 0
    for pk in due:
        if webhook_send(delivery_id=pk, now=now) != "skipped":
            tried += 1
    return tried


def webhook_retry(*, deliveries) -> int:
    """Send given-up or pending deliveries again at once (the admin's action): attempts start over."""
    return deliveries.filter(~Q(status=WebhookDelivery.Status.DELIVERED)).update(
        status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
