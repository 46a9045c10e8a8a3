"""The organizer sees runs, versions, batch rows and funnel events of their events only."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from recommendations.models import BatchRecommendation, FunnelEvent, ModelVersion, TrainingRun
from tests.factories import UserFactory

from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_events(client):
    mine = ServingEventFactory(name="My summit")
    theirs = ServingEventFactory(name="Their summit")
    UserFactory(username="orga")
    call_command(
        "create_organizer", organization=mine.organization.slug, username="orga", password="pw-orga-123456", verbosity=0
    )
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="orga"))
    for event, label in ((mine, "mine"), (theirs, "theirs")):
        viewer, other = attendees(event, 2)
        version = ModelVersion.objects.create(event=event, number=1, input_fingerprint=f"fp-{label}")
        TrainingRun.objects.create(event=event, message=f"run-{label}")
        BatchRecommendation.objects.create(
            event=event, attendee=viewer, source=f"src-{label}", computed_at=timezone.now()
        )
        FunnelEvent.objects.create(
            event=event, viewer=viewer, suggested=other, stage="shown", source=f"f-{label}", model_version=version
        )
    return mine, theirs


@pytest.mark.parametrize(
    ("model", "mine_text", "theirs_text"),
    [
        ("modelversion", "My summit v1", "Their summit v1"),
        ("trainingrun", "run-mine", "run-theirs"),
        ("batchrecommendation", "src-mine", "src-theirs"),
        ("funnelevent", "f-mine", "f-theirs"),
    ],
)
def test_changelists_scoped_to_organizer(client, two_events, model, mine_text, theirs_text):
    response = client.get(reverse(f"admin:recommendations_{model}_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert mine_text in page
    assert theirs_text not in page
    # Not even in the sidebar's event filter.
    assert "Their summit" not in page
