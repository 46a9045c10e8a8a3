"""Funnel records: "shown" buffered in Redis and flushed in bulk; later stages attributed to the
last "shown" of the pair, per source and model version."""

import pytest
from django.conf import settings

from events.services import connection_request, connection_respond
from recommendations.jobs.tasks import flush_funnel
from recommendations.models import FunnelEvent, ModelVersion
from recommendations.serving.funnel import funnel_flush_shown, funnel_record, funnel_record_shown
from recommendations.serving.lists import recommendations_for

from . import backends
from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db


def rows():
    return list(
        FunnelEvent.objects.order_by("id").values_list(
            "viewer_id", "suggested_id", "stage", "source", "model_version__number"
        )
    )


@pytest.fixture
def served():
    event = ServingEventFactory()
    viewer, a, b = attendees(event, 3)
    ModelVersion.objects.create(event=event, number=4, status=ModelVersion.Status.PUBLISHED, input_fingerprint="f")
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 2.0), (b.pk, 1.0)]}
    assert funnel_record_shown(viewer=viewer, result=recommendations_for(attendee=viewer)) == 2
    return viewer, a, b


@pytest.mark.skipif(not settings.REDIS_URL, reason="the buffer lives in Redis")
def test_shown_is_buffered_then_flushed_by_the_task(served):
    viewer, a, b = served
    assert rows() == []
    assert flush_funnel.delay().get() == 2
    assert rows() == [(viewer.pk, a.pk, "shown", "local", 4), (viewer.pk, b.pk, "shown", "local", 4)]
    assert funnel_flush_shown() == 0


def test_later_stages_attributed_to_last_shown(served):
    viewer, a, _b = served
    assert funnel_record(viewer_id=viewer.pk, suggested_id=a.pk, stage="opened") is not None
    connection = connection_request(requester=viewer, recipient=a)
    connection_respond(connection=connection, responder=a, accept=True)
    assert rows()[2:] == [
        (viewer.pk, a.pk, "opened", "local", 4),
        (viewer.pk, a.pk, "requested", "local", 4),
        (viewer.pk, a.pk, "accepted", "local", 4),
    ]


def test_stage_without_shown_is_not_recorded(served):
    viewer, a, b = served
    assert funnel_record(viewer_id=a.pk, suggested_id=viewer.pk, stage="opened") is None
    connection_request(requester=b, recipient=a)
    assert [r[2] for r in rows()] == ["shown", "shown"]


def test_empty_list_records_nothing():
    viewer = attendees(ServingEventFactory(), 1)[0]
    assert funnel_record_shown(viewer=viewer, result=recommendations_for(attendee=viewer)) == 0
