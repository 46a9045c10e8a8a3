"""The "here now" boost, read from the presence service's cache entry on every request."""

import pytest
from django.core.cache import cache

from events.presence import PRESENCE_CACHE_KEY
from recommendations.serving.cache import present_attendee_ids
from recommendations.serving.lists import HERE_NOW_ONLINE_TEXT, HERE_NOW_SAME_ROOM_TEXT, recommendations_for

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
    assert result.items[1].reasons[0] == {"kind": "here_now", "text": HERE_NOW_ONLINE_TEXT, "weight": 0.18}


def test_presence_of_another_event_is_ignored():
    event = ServingEventFactory()
    other = ServingEventFactory()
    viewer, a, b = attendees(event, 3)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 1.0), (b.pk, 0.9)]}
    cache.set(PRESENCE_CACHE_KEY.format(event_id=other.pk), {b.pk: None})
    assert [i.attendee_id for i in recommendations_for(attendee=viewer).items] == [a.pk, b.pk]
