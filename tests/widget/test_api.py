"""Attendee tokens for the embeddable widget, and the content-view endpoint of the content page."""

import time

import pytest
from django.core import signing
from rest_framework.test import APIClient

from events.api.attendees import TOKEN_NEEDS_API_KEY
from events.api.auth import ATTENDEE_TOKEN_MAX_AGE, ATTENDEE_TOKEN_SALT, INVALID_ATTENDEE_TOKEN, attendee_token_issue
from events.enums import InteractionType
from events.models import Interaction
from events.services import api_key_create
from tests.factories import AttendeeFactory, ContentFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(event, external_id, tail):
    return f"/api/v1/events/{event}/attendees/{external_id}/{tail}"


@pytest.fixture
def world():
    event = EventFactory(slug="summit")
    ada = AttendeeFactory(event=event, external_id="ada")
    bob = AttendeeFactory(event=event, external_id="bob")
    other = AttendeeFactory(event=EventFactory(slug="expo"), external_id="carol")
    _, secret = api_key_create(organization=event.organization, name="platform")
    return event, ada, bob, other, secret


def test_widget_token_issued_to_the_api_key(world):
    _, ada, _, _, secret = world
    response = APIClient().post(url("summit", "ada", "token/"), HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert response.status_code == 201
    assert response.data["expires_in"] == 1800
    assert response.data["widget_url"] == "http://testserver/static/matchmaking/widget.js"
    assert response.data["websocket_path"] == "/ws/events/summit/suggestions/"
    assert signing.TimestampSigner(salt=ATTENDEE_TOKEN_SALT).unsign_object(response.data["token"]) == {
        "e": ada.event_id,
        "a": ada.pk,
    }


def test_widget_token_refused_to_a_signed_in_attendee(world):
    _, ada, _, _, _ = world
    ada.user = UserFactory()
    ada.save()
    client = APIClient()
    client.force_login(ada.user)
    response = client.post(url("summit", "ada", "token/"))
    assert (response.status_code, response.data["detail"]) == (403, TOKEN_NEEDS_API_KEY)


def test_attendee_token_reads_own_suggestions_only(world):
    _, ada, _, _, _ = world
    client = APIClient(HTTP_AUTHORIZATION=f"Attendee-Token {attendee_token_issue(attendee=ada)}")
    assert client.get(url("summit", "ada", "recommendations/")).status_code == 200
    assert client.get(url("summit", "bob", "recommendations/")).status_code == 404
    assert client.get(url("expo", "carol", "recommendations/")).status_code == 404
    # A token is no key to the rest of the API.
    assert client.get("/api/v1/events/").status_code == 401


def test_attendee_token_of_another_event_gets_nothing_here(world):
    _, _, _, other, _ = world
    client = APIClient(HTTP_AUTHORIZATION=f"Attendee-Token {attendee_token_issue(attendee=other)}")
    assert client.get(url("summit", "ada", "recommendations/")).status_code == 404


def test_attendee_token_expired_is_refused(world):
    _, ada, _, _, _ = world

    class IssuedLongAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - ATTENDEE_TOKEN_MAX_AGE - 1)

    token = IssuedLongAgo(salt=ATTENDEE_TOKEN_SALT).sign_object({"e": ada.event_id, "a": ada.pk})
    response = APIClient(HTTP_AUTHORIZATION=f"Attendee-Token {token}").get(url("summit", "ada", "recommendations/"))
    assert (response.status_code, response.data["detail"]) == (401, INVALID_ATTENDEE_TOKEN)


def test_attendee_token_acts_block_and_not_relevant(world):
    _, ada, bob, _, _ = world
    client = APIClient(HTTP_AUTHORIZATION=f"Attendee-Token {attendee_token_issue(attendee=ada)}")
    assert client.post(url("summit", "ada", "blocks/"), {"attendee": "bob"}, format="json").status_code == 201
    assert list(bob.blocks_received.values_list("blocker__external_id", flat=True)) == ["ada"]


def test_content_view_recorded_with_dwell_once(world, settings):
    event, ada, _, _, _ = world
    event.live_starts_at = None
    event.live_ends_at = None
    event.on_demand_ends_at = None
    event.save()
    ContentFactory(event=event, external_id="talk-1")
    client = APIClient(HTTP_AUTHORIZATION=f"Attendee-Token {attendee_token_issue(attendee=ada)}")
    body = {"content": "talk-1", "seconds": 95.5, "client_event_id": "view:1"}
    first = client.post(url("summit", "ada", "content-views/"), body, format="json")
    again = client.post(url("summit", "ada", "content-views/"), body, format="json")
    assert (first.data, again.data) == ({"status": "accepted"}, {"status": "duplicate"})
    assert list(Interaction.objects.values_list("attendee__external_id", "type", "value")) == [
        ("ada", InteractionType.VIEW_CONTENT, 95.5)
    ]


def test_cors_only_for_token_calls_of_the_attendee_endpoints(world):
    _, ada, _, _, secret = world
    client = APIClient()
    preflight = client.options(
        url("summit", "ada", "blocks/"),
        HTTP_ORIGIN="https://platform.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert (
        preflight.status_code,
        preflight["Access-Control-Allow-Origin"],
        preflight["Access-Control-Allow-Headers"],
        preflight["Access-Control-Allow-Methods"],
        preflight["Access-Control-Max-Age"],
        preflight.has_header("Access-Control-Allow-Credentials"),
    ) == (200, "*", "authorization, content-type", "GET, POST, PATCH, OPTIONS", "600", False)
    token = attendee_token_issue(attendee=ada)
    with_token = client.get(
        url("summit", "ada", "recommendations/"),
        HTTP_ORIGIN="https://platform.example",
        HTTP_AUTHORIZATION=f"Attendee-Token {token}",
    )
    with_key = client.get(
        url("summit", "ada", "recommendations/"),
        HTTP_ORIGIN="https://platform.example",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )
    elsewhere = client.options(
        "/api/v1/events/", HTTP_ORIGIN="https://platform.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert with_token["Access-Control-Allow-Origin"] == "*"
    assert with_token["Access-Control-Expose-Headers"] == "X-Request-ID"  # the widget may read its id
    # the CORS header joins DRF's negotiation header; it replaced it before (a cache could then
    # serve a JSON answer to a client that asked for another type)
    # Names in any case; Accept-Language too: the reasons are in the reader's language.
    assert {v.strip().lower() for v in with_token["Vary"].split(",")} == {"accept", "accept-language", "origin"}
    assert "Access-Control-Allow-Origin" not in with_key
    assert "Access-Control-Allow-Origin" not in elsewhere
