"""What a hostile or careless client gets: a 4xx with a message (never a 500), JSON on every API
path whatever DEBUG is, and nothing of the server's internals.

- deep JSON: a 5,000-deep body raised RecursionError inside the parser, a 500 (the debug page in
  the demo); now refused before it is parsed, over REST and over WebSockets;
- an unhandled exception under /api/ answers JSON 500 without the exception's text or traceback;
- a path no route matches under /api/ answers JSON 404 with DEBUG on too;
- NUL in a URL (path or parameter) was a 500 from PostgreSQL; now a 400 naming where it was;
- a field error quotes at most 100 characters of the bad value."""

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from events import services
from events.ingestion import QUOTED_CHARS
from matchmaking_site import jsonlimits
from matchmaking_site.asgi import application
from matchmaking_site.exceptions import exception_handler
from matchmaking_site.middleware import NUL_IN_PARAMETER, NUL_IN_PATH
from matchmaking_site.websocket import NOT_AN_OBJECT
from tests.factories import AttendeeFactory, EventFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def api():
    event = EventFactory(slug="hostile")
    AttendeeFactory(event=event, external_id="ada")
    AttendeeFactory(event=event, external_id="bob")
    _, secret = services.api_key_create(organization=event.organization, name="platform")
    # As a server answers: the exception becomes a response, it is not re-raised into the test.
    return Client(HTTP_AUTHORIZATION=f"Api-Key {secret}", raise_request_exception=False)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events/hostile/interactions/",
        "/api/v1/events/hostile/questionnaire/hydrate/",
        "/api/v1/events/hostile/attendees/ada/connections/",
        "/api/v1/events/hostile/attendees/ada/blocks/",
    ],
)
def test_deeply_nested_json_is_a_400_before_parsing(api, debug, path):
    response = api.post(path, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": jsonlimits.TOO_DEEP.format(limit=jsonlimits.MAX_DEPTH)}


def test_nesting_up_to_the_limit_is_parsed_and_strings_do_not_count():
    assert jsonlimits.loads("[" * jsonlimits.MAX_DEPTH + "]" * jsonlimits.MAX_DEPTH) is not None
    with pytest.raises(jsonlimits.JsonTooDeep):
        jsonlimits.loads("[" * (jsonlimits.MAX_DEPTH + 1) + "]" * (jsonlimits.MAX_DEPTH + 1))
    brackets_in_text = json.dumps({"note": "[" * 5000, "quote": '\\"{{{'})
    assert jsonlimits.depth(brackets_in_text.encode()) == 1
    assert jsonlimits.loads(brackets_in_text)["note"] == "[" * 5000


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_refused_as_drf_refuses_them(api, constant):
    response = api.post(
        "/api/v1/events/hostile/interactions/",
        '{"interactions": [{"value": ' + constant + "}]}",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert constant in response.json()["detail"]


def test_a_body_that_is_not_utf8_is_a_400_saying_so(api):
    response = api.post("/api/v1/events/hostile/interactions/", b'{"a": "\xff"}', content_type="application/json")
    assert (response.status_code, response.json()) == (400, {"detail": jsonlimits.NOT_UTF8})


def test_a_body_past_the_size_limit_is_refused_without_being_read_whole(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post(
        "/api/v1/events/hostile/attendees/ada/connections/",
        json.dumps({"recipient": "bob", "message": "x" * 5000}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request."}


def test_an_unhandled_exception_under_the_api_is_json_without_internals(api, debug, monkeypatch):
    def broken(user):
        raise RuntimeError("db password is hunter2")

    monkeypatch.setattr("events.api.views.events_for_caller", broken)
    response = api.get("/api/v1/events/hostile/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Server error."}
    assert b"hunter2" not in response.content and b"Traceback" not in response.content


@pytest.mark.parametrize("path", ["/api/v1/no-such-route/", "/api/v1/events/hostile/attendees/ada/nope/", "/api/x"])
def test_an_unknown_api_route_is_a_json_404_whatever_debug_is(api, debug, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_pages_outside_the_api_keep_their_html_404(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_nul_in_the_path_is_a_400_not_a_database_error(api, debug):
    response = api.get("/api/v1/events/hostile/attendees/a%00da/recommendations/")
    assert response.status_code == 400
    assert response.json() == {"detail": NUL_IN_PATH}


def test_nul_in_a_query_parameter_is_a_400_naming_the_parameter(api):
    response = api.get("/api/v1/events/hostile/attendees/ada/recommendations/?num_results=1%00")
    assert response.status_code == 400
    assert response.json() == {"num_results": [NUL_IN_PARAMETER]}


def test_nul_in_a_page_url_is_a_plain_400(client):
    response = client.get("/e/hostile/rooms/ha%00ll/")
    assert response.status_code == 400
    assert response.content.decode() == NUL_IN_PATH


def test_nul_in_every_text_field_of_a_body_is_a_400_per_field(api):
    response = api.post(
        "/api/v1/events/hostile/attendees/ada/connections/",
        {"recipient": "b\x00ob", "message": "hi\x00"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "recipient": ["Null characters are not allowed."],
        "message": ["Null characters are not allowed."],
    }


def test_a_field_error_quotes_at_most_100_characters_of_the_bad_value():
    class Choice(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["room", "content"])

    bad = "Z" * 100_000
    serializer = Choice(data={"kind": bad})
    with pytest.raises(ValidationError) as caught:
        serializer.is_valid(raise_exception=True)
    assert bad in str(caught.value.detail)  # DRF alone echoes all 100,000 characters
    response = exception_handler(caught.value, {})
    (message,) = response.data["kind"]
    assert message.code == "invalid_choice"
    assert message == '"' + "Z" * (QUOTED_CHARS - 3) + '..." is not a valid choice.'


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_frame_too_deep_or_not_an_object_gets_an_error_and_the_socket_lives_on():
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"origin", b"http://localhost:8000")])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=DEEP)
    assert await communicator.receive_json_from() == {
        "type": "error",
        "message": jsonlimits.TOO_DEEP.format(limit=jsonlimits.MAX_DEPTH),
    }
    await communicator.send_to(text_data="[1, 2]")
    assert await communicator.receive_json_from() == {"type": "error", "message": NOT_AN_OBJECT}
    await communicator.send_to(text_data="{not json")
    assert (await communicator.receive_json_from())["message"].startswith("Not valid JSON")
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()
