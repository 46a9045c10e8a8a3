"""Webhooks to a real HTTP server on this machine: signed (checked with the standardwebhooks package a
platform would use), sent after commit only, retried with backoff under one id, given up and sent
again from the admin, scoped to the organization and the kinds an endpoint wants; and delivered by a
real Celery worker."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook

from events import webhooks
from events.enums import ConnectionStatus
from events.models import Connection, WebhookDelivery, WebhookEndpoint
from events.services import api_key_create, connection_request, connection_respond
from matchmaking_site.celery import app as celery_app
from tests.factories import AttendeeFactory, EventFactory, OrganizationFactory


class Receiver:
    """A platform's endpoint: answers each POST with the next of `codes` (the last one repeats)
    and keeps what it got."""

    def __init__(self, codes=(200,)):
        self.codes = list(codes)
        self.got: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = receiver.codes.pop(0) if len(receiver.codes) > 1 else receiver.codes[0]
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(codes=(200,)):
        made.append(Receiver(codes))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):
    """The receivers here listen on 127.0.0.1, which production refuses (see the last tests)."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


def accepted_connection(event):
    ada = AttendeeFactory(event=event, external_id="ada")
    bob = AttendeeFactory(event=event, external_id="bob")
    connection = connection_request(requester=ada, recipient=bob, message="hi")
    return connection_respond(connection=connection, responder=bob, accept=True)


@pytest.mark.django_db
def test_an_accepted_connection_reaches_the_platform_signed_after_commit(receiver, django_capture_on_commit_callbacks):
    event = EventFactory(slug="summit")
    hook = receiver()
    endpoint = WebhookEndpoint.objects.create(organization=event.organization, url=hook.url)
    ada = AttendeeFactory(event=event, external_id="ada")
    bob = AttendeeFactory(event=event, external_id="bob")
    _, secret = api_key_create(organization=event.organization, name="platform")
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    asked = api.post(
        "/api/v1/events/summit/attendees/ada/connections/", {"recipient": "bob"}, content_type="application/json"
    )
    assert hook.got == []  # a request is not what the platform subscribed to
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answered = api.post(f"/api/v1/events/summit/attendees/bob/connections/{asked.json()['id']}/accept/")
    assert answered.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert hook.got == []  # written with the acceptance, sent only after its commit
    for callback in callbacks:
        callback()
    [(headers, body)] = hook.got
    # What a platform does with the standardwebhooks package: a forged or altered body fails.
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert headers["webhook-id"] == delivery.message_id == payload["id"]
    assert payload["type"] == "connection.accepted" and payload["event"] == "summit"
    assert payload["data"]["connection"] | {"created_at": None, "responded_at": None} == {
        "id": asked.json()["id"],
        "requester": "ada",
        "recipient": "bob",
        "status": "accepted",
        "created_at": None,
        "responded_at": None,
    }
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint.secret).verify(body.replace(b"bob", b"eve"), headers)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert (ada.pk, bob.pk) and Connection.objects.get().status == ConnectionStatus.ACCEPTED


@pytest.mark.django_db
def test_failures_are_retried_with_backoff_under_one_id_then_given_up_and_sent_again(receiver):
    event = EventFactory()
    hook = receiver(codes=(500, 200))
    endpoint = WebhookEndpoint.objects.create(organization=event.organization, url=hook.url)
    with transaction.atomic():
        accepted_connection(event)
    delivery = WebhookDelivery.objects.get()
    t0 = timezone.now()
    assert webhooks.webhook_send(delivery_id=delivery.pk, first=True) == "pending"
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 500, "HTTP 500")
    assert timedelta(seconds=29) < delivery.next_attempt_at - t0 < timedelta(seconds=35)
    assert endpoint.failing_until == delivery.next_attempt_at
    assert webhooks.webhooks_send_due(now=t0 + timedelta(seconds=5)) == 0  # not due yet
    assert webhooks.webhooks_send_due(now=t0 + timedelta(seconds=40)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    first, second = hook.got
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == delivery.message_id  # the platform dedupes
    for headers, body in hook.got:
        Webhook(endpoint.secret).verify(body, headers)
    endpoint.refresh_from_db()
    assert endpoint.failing_until is None

    # An endpoint that never answers well: backoff doubles, then the delivery is given up.
    dead = receiver(codes=(503,))
    endpoint.url = dead.url
    endpoint.save()
    with transaction.atomic():
        accepted_connection(EventFactory(organization=event.organization))
    delivery = WebhookDelivery.objects.get(status="pending")
    now = timezone.now()
    waits = []
    for _ in range(webhooks.MAX_ATTEMPTS):
        assert webhooks.webhook_send(delivery_id=delivery.pk, now=now) != "skipped"
        delivery.refresh_from_db()
        waits.append(round((delivery.next_attempt_at - timezone.now()).total_seconds() / 30))
        now = delivery.next_attempt_at
    assert waits[:5] == [1, 2, 4, 8, 16] and waits[-1] == 6 * 3600 // 30  # doubling, capped at 6 h
    assert (delivery.status, delivery.attempts, len(dead.got)) == (
        "failed",
        webhooks.MAX_ATTEMPTS,
        webhooks.MAX_ATTEMPTS,
    )
    assert webhooks.webhooks_send_due(now=now + timedelta(days=2)) == 0  # given up: never sent again by itself
    assert webhooks.webhook_retry(deliveries=WebhookDelivery.objects.filter(pk=delivery.pk)) == 1
    endpoint.url = hook.url
    endpoint.save()
    assert webhooks.webhooks_send_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


@pytest.mark.django_db
def test_a_failing_endpoint_holds_new_first_attempts_and_one_sender_holds_a_delivery(receiver):
    event = EventFactory()
    hook = receiver()
    endpoint = WebhookEndpoint.objects.create(
        organization=event.organization, url=hook.url, failing_until=timezone.now() + timedelta(minutes=2)
    )
    with transaction.atomic():
        accepted_connection(event)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.webhook_send(delivery_id=delivery.pk, first=True) == "skipped"
    delivery.refresh_from_db()
    assert hook.got == [] and delivery.next_attempt_at == endpoint.failing_until
    # The sweeper sends it when the endpoint's backoff is over; a second sender at the same moment
    # finds the lease taken (or the delivery done) and sends nothing.
    later = endpoint.failing_until + timedelta(seconds=1)
    assert webhooks.webhook_send(delivery_id=delivery.pk, now=later) == "delivered"
    assert webhooks.webhook_send(delivery_id=delivery.pk, now=later) == "skipped"
    assert len(hook.got) == 1


@pytest.mark.django_db
def test_only_the_events_organization_and_wanted_kinds_get_messages_and_a_rollback_sends_none(receiver):
    event = EventFactory()
    ours, theirs, picky = receiver(), receiver(), receiver()
    WebhookEndpoint.objects.create(organization=event.organization, url=ours.url, kinds=["connection.accepted"])
    WebhookEndpoint.objects.create(organization=OrganizationFactory(), url=theirs.url)
    WebhookEndpoint.objects.create(organization=event.organization, url=picky.url, kinds=["meeting.booked"])
    WebhookEndpoint.objects.create(organization=event.organization, url=picky.url, active=False)
    ada, bob = AttendeeFactory(event=event), AttendeeFactory(event=event)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        connection_respond(connection=connection_request(requester=ada, recipient=bob), responder=bob, accept=True)
        raise Undo
    assert not WebhookDelivery.objects.exists()  # nothing committed, nothing to tell
    declined = connection_request(requester=ada, recipient=bob)
    connection_respond(connection=declined, responder=bob, accept=False)
    assert not WebhookDelivery.objects.exists()
    declined.delete()
    connection_respond(connection=connection_request(requester=bob, recipient=ada), responder=ada, accept=True)
    assert list(WebhookDelivery.objects.values_list("endpoint__url", flat=True)) == [ours.url]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_the_message_of_an_api_acceptance(receiver):
    celery_app.conf.task_always_eager = False
    event = EventFactory(slug="live")
    hook = receiver()
    endpoint = WebhookEndpoint.objects.create(organization=event.organization, url=hook.url)
    AttendeeFactory(event=event, external_id="ada")
    AttendeeFactory(event=event, external_id="bob")
    _, secret = api_key_create(organization=event.organization, name="platform")
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=20):
        asked = api.post(
            "/api/v1/events/live/attendees/ada/connections/", {"recipient": "bob"}, content_type="application/json"
        )
        api.post(f"/api/v1/events/live/attendees/bob/connections/{asked.json()['id']}/accept/")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not WebhookDelivery.objects.filter(status="delivered").exists():
            time.sleep(0.1)
    [(headers, body)] = hook.got
    assert json.loads(body)["type"] == "connection.accepted"
    Webhook(endpoint.secret).verify(body, headers)
    assert WebhookDelivery.objects.get().status == "delivered"


# --- The platform manages its endpoints through the API -------------------------------------------


def _platform(organization):
    _, secret = api_key_create(organization=organization, name="platform")
    return Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")


@pytest.mark.django_db
def test_a_platform_registers_an_endpoint_sees_its_deliveries_and_rotates_its_secret(receiver):
    event = EventFactory(slug="summit")
    api = _platform(event.organization)
    made = api.post(
        "/api/v1/webhooks/",
        {"url": "https://platform.example/hooks", "kinds": ["connection.accepted", "connection.accepted"]},
        content_type="application/json",
    )
    assert made.status_code == 201
    body = made.json()
    assert body["secret"].startswith("whsec_") and body["kinds"] == ["connection.accepted"] and body["active"]
    listed = api.get("/api/v1/webhooks/").json()["results"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]  # shown once only
    # The signing key is the platform's: rotate it, and the next delivery is signed with the new one.
    rotated = api.post(f"/api/v1/webhooks/{body['id']}/secret/").json()["secret"]
    assert rotated.startswith("whsec_") and rotated != body["secret"]
    hook = receiver()
    WebhookEndpoint.objects.filter(pk=body["id"]).update(url=hook.url)  # a local server: the admin may
    accepted_connection(event)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.webhook_send(delivery_id=delivery.pk) == "delivered"
    [(headers, sent)] = hook.got
    assert Webhook(rotated).verify(sent, headers)["type"] == "connection.accepted"
    with pytest.raises(Exception, match="signature"):
        Webhook(body["secret"]).verify(sent, headers)
    [row] = api.get(f"/api/v1/webhooks/{body['id']}/deliveries/").json()["results"]
    assert (row["message_id"], row["kind"], row["event"], row["status"], row["attempts"]) == (
        delivery.message_id,
        "connection.accepted",
        "summit",
        "delivered",
        1,
    )
    # Paused, it gets nothing new; removed, it is gone with its history.
    paused = api.patch(f"/api/v1/webhooks/{body['id']}/", {"active": False}, content_type="application/json")
    assert paused.status_code == 200 and paused.json()["active"] is False
    carol, dan = AttendeeFactory(event=event), AttendeeFactory(event=event)
    connection_respond(connection=connection_request(requester=carol, recipient=dan), responder=dan, accept=True)
    assert WebhookDelivery.objects.count() == 1
    assert api.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_endpoint_addresses_and_kinds_are_checked_field_by_field():
    api = _platform(OrganizationFactory())
    for url, message in (
        ("http://platform.example/hooks", "Use an https:// address."),
        ("https://127.0.0.1/hooks", "Use a public address"),
        ("https://10.1.2.3/hooks", "Use a public address"),
        ("https://169.254.169.254/latest/meta-data/", "Use a public address"),
        ("https://[::1]/hooks", "Use a public address"),
        ("https://localhost:8443/hooks", "Use a public address"),
        ("not a url", "Enter a valid URL."),
    ):
        refused = api.post("/api/v1/webhooks/", {"url": url}, content_type="application/json")
        assert refused.status_code == 400 and refused.json()["url"][0].startswith(message), url
    wrong_kind = api.post(
        "/api/v1/webhooks/", {"url": "https://ok.example/", "kinds": ["everything"]}, content_type="application/json"
    )
    assert wrong_kind.status_code == 400 and list(wrong_kind.json()) == ["kinds"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_another_organizations_endpoints_are_404_and_only_a_key_manages_them():
    ours, theirs = OrganizationFactory(), OrganizationFactory()
    endpoint = WebhookEndpoint.objects.create(organization=theirs, url="https://theirs.example/")
    api = _platform(ours)
    assert api.get("/api/v1/webhooks/").json()["results"] == []
    for method, path in (
        ("get", f"/api/v1/webhooks/{endpoint.pk}/"),
        ("patch", f"/api/v1/webhooks/{endpoint.pk}/"),
        ("delete", f"/api/v1/webhooks/{endpoint.pk}/"),
        ("post", f"/api/v1/webhooks/{endpoint.pk}/secret/"),
        ("get", f"/api/v1/webhooks/{endpoint.pk}/deliveries/"),
    ):
        assert getattr(api, method)(path, content_type="application/json").status_code == 404, (method, path)
    endpoint.refresh_from_db()
    assert endpoint.url == "https://theirs.example/" and endpoint.active
    assert Client().get("/api/v1/webhooks/").status_code in (401, 403)


# --- Only out to the internet ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_private_address_is_refused_without_a_connection_and_a_redirect_is_not_followed(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    event = EventFactory(slug="summit")
    inside = receiver()
    WebhookEndpoint.objects.create(organization=event.organization, url=inside.url)
    accepted_connection(event)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.webhook_send(delivery_id=delivery.pk) == "pending"  # failed, retried later
    delivery.refresh_from_db()
    assert inside.got == [] and delivery.last_status_code is None
    assert delivery.last_error == webhooks.PRIVATE_ADDRESS.format(host="127.0.0.1", ip="127.0.0.1")

    # Allowed to post here, a 3xx is a failed attempt: the request never goes where it points.
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    forwarded = receiver()

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", forwarded.url)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        WebhookEndpoint.objects.update(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        webhooks.webhook_send(delivery_id=delivery.pk)
    finally:
        server.shutdown()
        server.server_close()
    delivery.refresh_from_db()
    assert (delivery.last_status_code, delivery.last_error, forwarded.got) == (307, "HTTP 307", [])


@pytest.mark.django_db
def test_a_name_that_turns_inward_after_the_check_is_not_followed_there(receiver, settings, monkeypatch):
    """DNS rebinding: the attacker's name answers with a public address, then, to the next lookup,
    with this machine's. Checked by one lookup and connected by another, the request reached the
    inside receiver. Now the attempt resolves the name once and connects to the address it checked."""
    import socket

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    inside = receiver()
    port = int(inside.url.rsplit(":", 1)[1].split("/")[0])
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host != "hooks.example":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        ip = "203.0.114.1" if len(lookups) == 1 else "127.0.0.1"  # public (unrouted here), then inward
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    event = EventFactory(slug="summit")
    WebhookEndpoint.objects.create(organization=event.organization, url=f"http://hooks.example:{port}/hook")
    accepted_connection(event)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.webhook_send(delivery_id=delivery.pk) == "pending"  # failed: nothing there answers
    delivery.refresh_from_db()
    assert inside.got == [] and lookups == ["hooks.example"]
    assert delivery.last_status_code is None and delivery.last_error
