"""The embedded default (local-memory cache, no Redis): the same serving behaviour through the
fallback paths of the counters and the funnel."""

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from events.services import block_create
from recommendations.models import FunnelEvent
from recommendations.serving.exposure import exposure_demote
from recommendations.serving.funnel import funnel_record_shown
from recommendations.serving.lists import recommendations_for

from . import backends
from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "embedded"}}
    assert isinstance(caches["default"], LocMemCache)


def test_embedded_cache_serves_and_invalidates():
    event = ServingEventFactory()
    viewer, star, a = attendees(event, 3)
    backends.SCORES["local"] = {viewer.pk: [(star.pk, 9.0), (a.pk, 1.0)]}
    assert [i.attendee_id for i in recommendations_for(attendee=viewer).items] == [star.pk, a.pk]
    assert recommendations_for(attendee=viewer).cached is True
    block_create(blocker=star, blocked=viewer)
    result = recommendations_for(attendee=viewer)
    assert (result.cached, [i.attendee_id for i in result.items]) == (False, [a.pk])


def test_embedded_exposure_counters_demote():
    event = ServingEventFactory(exposure_cap_share=0.25)  # 4 viewers -> 1 list each
    v1, v2, star, a = attendees(event, 4)
    assert exposure_demote(event=event, viewer_id=v1.pk, ranked_ids=[star.pk, a.pk], k=1) == [star.pk, a.pk]
    assert exposure_demote(event=event, viewer_id=v2.pk, ranked_ids=[star.pk, a.pk], k=1) == [a.pk, star.pk]
    # v1's list changes: the star's slot is freed for v2.
    assert exposure_demote(event=event, viewer_id=v1.pk, ranked_ids=[v2.pk], k=1) == [v2.pk]
    assert exposure_demote(event=event, viewer_id=v2.pk, ranked_ids=[star.pk, a.pk], k=1) == [star.pk, a.pk]


def test_embedded_funnel_is_written_at_once():
    event = ServingEventFactory()
    viewer, a = attendees(event, 2)
    assert funnel_record_shown(viewer=viewer, result=recommendations_for(attendee=viewer)) == 1
    assert list(FunnelEvent.objects.values_list("viewer_id", "suggested_id", "stage")) == [(viewer.pk, a.pk, "shown")]
