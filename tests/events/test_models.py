"""Database constraints hold even when a caller bypasses the services."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from events.enums import InteractionType
from events.models import Block, Connection, Event, Interaction, NotRelevant
from tests.factories import (
    LIVE_START,
    AttendeeFactory,
    ContentFactory,
    EventFactory,
    InteractionFactory,
    InterestTagFactory,
    OrganizationFactory,
)

pytestmark = pytest.mark.django_db


def test_interaction_duplicate_client_event_id_same_event_rejected():
    first = InteractionFactory(client_event_id="abc")
    with pytest.raises(IntegrityError), transaction.atomic():
        InteractionFactory(attendee__event=first.event, client_event_id="abc")
    assert Interaction.objects.filter(client_event_id="abc").count() == 1


def test_interaction_same_client_event_id_other_event_allowed():
    InteractionFactory(client_event_id="abc")
    InteractionFactory(client_event_id="abc")
    assert Interaction.objects.filter(client_event_id="abc").count() == 2


def test_interaction_two_contexts_rejected():
    attendee = AttendeeFactory()
    content = ContentFactory(event=attendee.event)
    with pytest.raises(IntegrityError), transaction.atomic():
        InteractionFactory(attendee=attendee, content=content)  # the factory also sets a room


def test_interaction_no_context_rejected():
    with pytest.raises(IntegrityError), transaction.atomic():
        InteractionFactory(room=None)


def test_interaction_interest_only_accepted():
    attendee = AttendeeFactory()
    tag = InterestTagFactory(event=attendee.event)
    interaction = InteractionFactory(attendee=attendee, room=None, interest=tag, type=InteractionType.QUESTIONNAIRE)
    assert interaction.context_kind == "interest"


def test_interaction_negative_value_rejected():
    with pytest.raises(IntegrityError), transaction.atomic():
        InteractionFactory(value=-1.0)


def test_connection_reverse_duplicate_rejected():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    Connection.objects.create(event=a.event, requester=a, recipient=b)
    with pytest.raises(IntegrityError), transaction.atomic():
        Connection.objects.create(event=a.event, requester=b, recipient=a)
    assert Connection.objects.count() == 1


def test_connection_self_rejected():
    a = AttendeeFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Connection.objects.create(event=a.event, requester=a, recipient=a)


def test_block_self_and_duplicate_rejected():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    Block.objects.create(event=a.event, blocker=a, blocked=b)
    with pytest.raises(IntegrityError), transaction.atomic():
        Block.objects.create(event=a.event, blocker=a, blocked=b)
    with pytest.raises(IntegrityError), transaction.atomic():
        Block.objects.create(event=a.event, blocker=a, blocked=a)
    # The other direction is a different block, and allowed.
    Block.objects.create(event=a.event, blocker=b, blocked=a)
    assert Block.objects.count() == 2


def test_not_relevant_duplicate_rejected():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    NotRelevant.objects.create(event=a.event, attendee=a, target=b)
    with pytest.raises(IntegrityError), transaction.atomic():
        NotRelevant.objects.create(event=a.event, attendee=a, target=b)


def test_attendee_external_id_unique_per_event_only():
    a = AttendeeFactory(external_id="x1")
    AttendeeFactory(external_id="x1")  # another event: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        AttendeeFactory(external_id="x1", event=a.event)


def test_event_live_window_must_be_ordered():
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(
            organization=OrganizationFactory(),
            slug="backwards",
            name="Backwards",
            live_starts_at=LIVE_START,
            live_ends_at=LIVE_START - timedelta(hours=1),
        )


def test_event_defaults_match_the_design():
    event = EventFactory()
    assert event.qualifying_threshold == 1000
    assert event.dwell_threshold("join_room") == 60.0
    assert event.dwell_threshold("view_content") == 30.0
    assert event.dwell_threshold("chat") == 0.0
    assert event.phase == "cold"
    assert event.backend == "local"
