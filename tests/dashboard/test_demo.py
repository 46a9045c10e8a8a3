"""`manage.py dashboard_demo`: what `make demo` runs after `seed_demo` to give the dashboard a
running event to show."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dashboard.selectors import dashboard_snapshot
from events.enums import Phase
from events.models import Attendee, Event, RoomVisit
from recommendations.models import BatchRecommendation, FunnelEvent, ModelVersion

pytestmark = pytest.mark.django_db


def test_dashboard_demo_brings_the_seeded_event_to_life(settings, tmp_path):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    call_command("seed_demo", slug="demo", verbosity=0, stdout=StringIO())  # 300 people: past the threshold
    out = StringIO()

    call_command("dashboard_demo", event="demo", present=15, viewers=40, stdout=out)

    event = Event.objects.get(slug="demo")
    assert event.phase == Phase.LIVE and "phase: cold -> live" in out.getvalue()
    assert ModelVersion.objects.filter(event=event, status=ModelVersion.Status.PUBLISHED).count() == 1
    assert RoomVisit.objects.filter(event=event, left_at__isnull=True).count() == 15
    stages = set(FunnelEvent.objects.filter(event=event).values_list("stage", flat=True))
    assert {"shown", "opened", "requested"} <= stages
    receiving = Attendee.objects.filter(event=event, consent_receive_recommendations=True)
    assert 0 < receiving.count() < 300  # the seed withdraws some consents, as real attendees do
    assert BatchRecommendation.objects.filter(event=event).count() == receiving.count()

    # What the organizer then sees: a phase, the model serving, people in rooms, a funnel.
    snapshot = dashboard_snapshot(event=event)
    assert snapshot["engagement"]["active_now"] >= 15
    assert sum(row["people"] for row in snapshot["engagement"]["occupancy"]) == 15
    assert snapshot["models"][0]["status"] == ModelVersion.Status.PUBLISHED
    assert snapshot["funnel"]

    again = StringIO()
    call_command("dashboard_demo", event="demo", stdout=again)
    assert "nothing to do" in again.getvalue()  # `make demo` runs it every time


def test_dashboard_demo_without_the_event_names_what_to_run():
    with pytest.raises(CommandError, match=re.escape("run `manage.py seed_demo` first")):
        call_command("dashboard_demo", event="nope", stdout=StringIO())
