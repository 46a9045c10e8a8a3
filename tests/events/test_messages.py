"""Messages of a mutual connection: who may write and read, numbering and catch-up over REST, and a
block that closes the thread at once, also against a message racing it. (The live push on the
widget's socket: tests/widget/test_consumers.py.)"""

import threading
import time

import pytest
from django.db import connection as db_connection
from django.db import transaction
from django.test import Client

from events import messages, services
from events.models import Message
from events.services import api_key_create
from tests.factories import AttendeeFactory, EventFactory


def url(who, connection_id, query=""):
    return f"/api/v1/events/summit/attendees/{who}/connections/{connection_id}/messages/{query}"


@pytest.fixture
def pair(db):
    event = EventFactory(slug="summit")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob")
    carol = AttendeeFactory(event=event, external_id="carol", display_name="Carol")
    asked = services.connection_request(requester=ada, recipient=bob)
    _, secret = api_key_create(organization=event.organization, name="platform")
    return event, ada, bob, carol, asked, Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")


def send(api, who, connection_id, body):
    return api.post(url(who, connection_id), {"body": body}, content_type="application/json")


def test_a_thread_opens_when_the_connection_is_accepted_and_numbers_its_messages(pair):
    _event, _ada, bob, _carol, asked, api = pair
    early = send(api, "ada", asked.pk, "Hello?")
    assert (early.status_code, early.json()) == (400, {"body": [messages.NOT_MUTUAL]})
    services.connection_respond(connection=asked, responder=bob, accept=True)
    sent = [send(api, who, asked.pk, text) for who, text in (("ada", "Hi Bob"), ("bob", "Hi Ada"), ("ada", "Coffee?"))]
    assert [(r.status_code, r.json()["number"], r.json()["sender"]) for r in sent] == [
        (201, 1, "ada"),
        (201, 2, "bob"),
        (201, 3, "ada"),
    ]
    everything = api.get(url("bob", asked.pk)).json()
    assert [m["body"] for m in everything["messages"]] == ["Hi Bob", "Hi Ada", "Coffee?"]
    newer = api.get(url("ada", asked.pk, "?after=2")).json()
    assert (newer["last"], [m["number"] for m in newer["messages"]]) == (3, [3])
    blank = send(api, "ada", asked.pk, "   ")
    assert blank.status_code == 400 and "blank" in blank.json()["body"][0]
    assert send(api, "ada", asked.pk, "x" * 1001).status_code == 400
    # Not Carol's conversation; not another event's.
    assert api.get(url("carol", asked.pk)).status_code == 404
    assert send(api, "carol", asked.pk, "Me too").status_code == 404
    _, theirs = api_key_create(organization=EventFactory().organization, name="theirs")
    assert Client(HTTP_AUTHORIZATION=f"Api-Key {theirs}").get(url("ada", asked.pk)).status_code == 404
    assert Message.objects.count() == 3


def test_a_block_closes_the_thread_for_both_at_once(pair):
    _event, ada, bob, _carol, asked, api = pair
    services.connection_respond(connection=asked, responder=bob, accept=True)
    send(api, "ada", asked.pk, "Hi")
    services.block_create(blocker=bob, blocked=ada)
    for who in ("ada", "bob"):
        assert api.get(url(who, asked.pk)).status_code == 404
        assert send(api, who, asked.pk, "Still there?").status_code == 404
    services.block_delete(blocker=bob, blocked=ada)
    assert api.get(url("ada", asked.pk)).json()["last"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_message_racing_a_block_is_refused_once_the_block_commits():
    """The message waits on the connection's lock the block holds, then sees the block."""
    event = EventFactory(slug="summit")
    ada, bob = AttendeeFactory(event=event), AttendeeFactory(event=event)
    asked = services.connection_request(requester=ada, recipient=bob)
    services.connection_respond(connection=asked, responder=bob, accept=True)
    locked, outcome = threading.Event(), {}

    def block():
        try:
            with transaction.atomic():
                services.block_create(blocker=bob, blocked=ada)
                locked.set()
                time.sleep(1.0)
        finally:
            db_connection.close()

    def write():
        locked.wait(10)
        try:
            messages.message_send(connection=asked, sender=ada, body="One more thing")
            outcome["message"] = "sent"
        except messages.NoThread:
            outcome["message"] = "refused"
        finally:
            db_connection.close()

    threads = [threading.Thread(target=block), threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome == {"message": "refused"} and not Message.objects.exists()
