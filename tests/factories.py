"""Factories with no surprises: every field a test does not set is plain and predictable."""

from datetime import UTC, datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from events.enums import InteractionType
from events.models import Attendee, Content, Event, Interaction, InterestTag, Organization, Room

LIVE_START = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"event-{n}")
    name = factory.Sequence(lambda n: f"Event {n}")
    live_starts_at = LIVE_START
    live_ends_at = LIVE_START + timedelta(hours=9)
    on_demand_ends_at = LIVE_START + timedelta(days=30)


class LiveEventFactory(EventFactory):
    """An event live now: since an hour, for eight more hours, then on demand for 30 days."""

    live_starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    live_ends_at = factory.LazyAttribute(lambda e: e.live_starts_at + timedelta(hours=9))
    on_demand_ends_at = factory.LazyAttribute(lambda e: e.live_starts_at + timedelta(days=30, hours=1))


class InterestTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InterestTag

    event = factory.SubFactory(EventFactory)
    slug = factory.Sequence(lambda n: f"tag-{n}")
    label = factory.Sequence(lambda n: f"Tag {n}")


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room

    event = factory.SubFactory(EventFactory)
    external_id = factory.Sequence(lambda n: f"room-{n}")
    name = factory.Sequence(lambda n: f"Room {n}")


class ContentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Content

    event = factory.SubFactory(EventFactory)
    external_id = factory.Sequence(lambda n: f"content-{n}")
    title = factory.Sequence(lambda n: f"Content {n}")


class AttendeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attendee

    event = factory.SubFactory(EventFactory)
    external_id = factory.Sequence(lambda n: f"att-{n}")
    display_name = factory.Sequence(lambda n: f"Attendee {n}")


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    attendee = factory.SubFactory(AttendeeFactory)
    event = factory.SelfAttribute("attendee.event")
    room = factory.SubFactory(RoomFactory, event=factory.SelfAttribute("..attendee.event"))
    type = InteractionType.JOIN_ROOM
    value = 120.0
    occurred_at = LIVE_START + timedelta(minutes=30)
    client_event_id = factory.Sequence(lambda n: f"ce-{n}")
    qualifies = True
