"""The "here now" boost, read from the presence service's cache entry on every request."""

import pytest
from django.core.cache import cache

from events.presence import PRESENCE_CACHE_KEY
from recommendations.serving.cache import present_attendee_ids
from recommendations.serving.lists import (
    HERE_NOW_ONLINE_TEXT,
    HERE_NOW_SAME_ROOM_TEXT,
    personal_first,
    recommendations_for,
)

from . import backends
from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db


def test_present_attendee_ids_empty_without_presence():
    assert present_attendee_ids(ServingEventFactory()) == {}


def test_same_room_boost_lifts_candidate_and_explains_it():
    event = ServingEventFactory()
    viewer, a, b, c = attendees(event, 4)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 1.0), (b.pk, 0.9), (c.pk, 0.8)]}
    assert [i.attendee_id for i in recommendations_for(attendee=viewer).items] == [a.pk, b.pk, c.pk]
    # Presence changes reach the very next (cached) response: the boost is applied after the cache.
    cache.set(PRESENCE_CACHE_KEY.format(event_id=event.pk), {viewer.pk: 7, c.pk: 7, b.pk: None})
    result = recommendations_for(attendee=viewer)
    assert result.cached is True
    assert [(i.attendee_id, i.score, i.here_now) for i in result.items] == [
        (c.pk, 1.2, True),
        (b.pk, 1.08, True),
        (a.pk, 1.0, False),
    ]
    assert result.items[0].reasons[0] == {"kind": "here_now", "text": HERE_NOW_SAME_ROOM_TEXT, "weight": 0.4}
    # "Online now" says nothing about the two of them: it follows the personal reason.
    assert [r["kind"] for r in result.items[1].reasons] == ["local_test", "online"]
    assert result.items[1].reasons[1] == {"kind": "online", "text": HERE_NOW_ONLINE_TEXT, "weight": 0.18}


def test_presence_of_another_event_is_ignored():
    event = ServingEventFactory()
    other = ServingEventFactory()
    viewer, a, b = attendees(event, 3)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 1.0), (b.pk, 0.9)]}
    cache.set(PRESENCE_CACHE_KEY.format(event_id=other.pk), {b.pk: None})
    assert [i.attendee_id for i in recommendations_for(attendee=viewer).items] == [a.pk, b.pk]


def test_people_in_the_viewers_room_join_the_visible_list_up_to_the_cap():
    """A room of five: the three who arrived first (HERE_NOW_ADDED_MAX) all join the viewer's first
    six, displacing the bottom of the list, in arrival order; the fourth does not. Before, each was
    placed just above the last entry, so only one of them was ever visible."""
    event = ServingEventFactory()
    viewer, *listed = attendees(event, 11)
    *listed, p, q, r, s = listed
    backends.SCORES["local"] = {viewer.pk: [(b.pk, 0.5**i) for i, b in enumerate(listed)]}
    cache.set(PRESENCE_CACHE_KEY.format(event_id=event.pk), {viewer.pk: 7, p.pk: 7, q.pk: 7, r.pk: 7, s.pk: 7})
    result = recommendations_for(attendee=viewer, num_results=6)
    ids = [i.attendee_id for i in result.items]
    assert ids == [listed[0].pk, listed[1].pk, listed[2].pk, p.pk, q.pk, r.pk]
    assert all(i.here_now and i.source == "here_now" for i in result.items[3:])
    assert result.items[3].reasons[0]["text"] == HERE_NOW_SAME_ROOM_TEXT


def test_personal_reasons_lead_and_generic_ones_follow():
    reasons = [
        {"kind": "online", "text": "Online now", "weight": 0.3},
        {"kind": "sociable", "text": "Well connected", "weight": 0.2},
        {"kind": "same_time", "text": "You both spent 41 min in 'K8s'", "weight": 0.1},
        {"kind": "popular", "text": "Meets many people", "weight": 0.05},
        {"kind": "mutual_contacts", "text": "2 people you both met", "weight": 0.01},
    ]
    assert [r["kind"] for r in personal_first(reasons)] == [
        "same_time",
        "mutual_contacts",
        "online",
        "sociable",
        "popular",
    ]
