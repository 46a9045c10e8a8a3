import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from events.models import Attendee, Event, Interaction

pytestmark = pytest.mark.django_db
START = "2026-06-04T09:00:00Z"


def digest(slug: str) -> str:
    """Everything the seed decides, independent of primary keys and of the slug."""
    event = Event.objects.get(slug=slug)
    h = hashlib.sha256()
    for a in Attendee.objects.filter(event=event).order_by("external_id").prefetch_related("interests", "offers"):
        h.update(f"{a.external_id}|{a.display_name}|{a.headline}|{a.group}|{a.consent_training}".encode())
        h.update(",".join(sorted(t.slug for t in a.interests.all())).encode())
        h.update(",".join(sorted(t.slug for t in a.offers.all())).encode())
    rows = (
        Interaction.objects.filter(event=event)
        .order_by("client_event_id")
        .values_list(
            "attendee__external_id",
            "room__external_id",
            "content__external_id",
            "type",
            "value",
            "occurred_at",
            "qualifies",
        )
    )
    for row in rows:
        h.update(repr(row).encode())
    return h.hexdigest()


def seed(slug: str, seed_value: int, **kwargs) -> str:
    out = StringIO()
    call_command("seed_demo", seed=seed_value, slug=slug, start=START, verbosity=0, stdout=out, **kwargs)
    return out.getvalue()


def test_seed_demo_same_seed_same_rows():
    seed("one", 7, attendees=60)
    seed("two", 7, attendees=60)
    assert digest("one") == digest("two")


def test_seed_demo_other_seed_other_rows():
    seed("one", 7, attendees=60)
    seed("two", 8, attendees=60)
    assert digest("one") != digest("two")


def test_seed_demo_realistic_shape():
    out = seed("demo", 2009)
    event = Event.objects.get(slug="demo")
    assert event.attendees.count() == 300
    assert event.rooms.count() == 20
    assert event.contents.count() == 40
    interactions = Interaction.objects.filter(event=event)
    qualifying = interactions.filter(qualifies=True).count()
    # Enough to pass the default threshold of 1,000, and some accidental clicks filtered out.
    assert qualifying > event.qualifying_threshold
    assert interactions.filter(qualifies=False, type="join_room", value__lt=60).exists()
    assert f"{interactions.count()} interactions ({qualifying} qualifying)" in out


def test_seed_demo_twice_is_idempotent():
    seed("demo", 1, attendees=30)
    before = Interaction.objects.count()
    out = seed("demo", 1, attendees=30)
    assert "already exists" in out
    assert Interaction.objects.count() == before


def test_seed_demo_reset_recreates():
    seed("demo", 1, attendees=30)
    seed("demo", 1, attendees=20, reset=True)
    assert Attendee.objects.filter(event__slug="demo").count() == 20


def test_seed_demo_bad_start_is_a_command_error():
    with pytest.raises(CommandError, match="--start: 'tomorrow' is not an ISO 8601 date-time"):
        call_command("seed_demo", start="tomorrow", verbosity=0)
