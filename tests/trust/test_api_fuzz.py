"""Schemathesis against the project's own OpenAPI schema (drf-spectacular), in-process over WSGI.

Bounded: a fixed number of generated requests per operation. Every response must not be a 5xx,
must carry a status code the schema documents for that operation, and must match its documented
content type and body schema. Path parameters are pinned to a real event and attendee half of the
time, so the generated bodies reach the code behind the 404s."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from events import services
from events.models import Attendee, Event, InterestTag
from tests.factories import AttendeeFactory, EventFactory, RoomFactory

# What the issue asks: no 5xx, and every status, content type and body as documented. (Whether
# DRF rejects every schema-violating query string, e.g. a non-integer `offset` that pagination
# ignores, is not asked.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def world(django_db_blocker):
    """An event with attendees, a room and an API key, created once per operation's run."""
    with django_db_blocker.unblock():
        event = Event.objects.filter(slug="fuzz").first() or EventFactory(slug="fuzz")
        if not event.attendees.exists():
            tag = InterestTag.objects.create(event=event, slug="t", label="T")
            for i in range(3):
                attendee = AttendeeFactory(event=event, external_id=f"fuzz-{i}")
                services.attendee_set_tags(attendee=attendee, interests=[tag])
            RoomFactory(event=event, external_id="fuzz-room")
        _, secret = services.api_key_create(organization=event.organization, name="fuzz")
        return event, secret


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
# Derandomized: CI replays the same requests every run, so a failure is reproducible, not flaky.
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, world):
    event, secret = world
    if "event" in (case.path_parameters or {}) and hash(case.path_parameters["event"]) % 2 == 0:
        case.path_parameters["event"] = event.slug
    if "external_id" in (case.path_parameters or {}) and hash(case.path_parameters["external_id"]) % 2 == 0:
        # The DELETE operation erases attendees as it goes: make one when none is left.
        attendee = Attendee.objects.filter(event=event).first() or AttendeeFactory(event=event)
        case.path_parameters["external_id"] = attendee.external_id
    case.call_and_validate(headers={"Authorization": f"Api-Key {secret}"}, checks=CHECKS)
