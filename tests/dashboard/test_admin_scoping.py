"""Every admin list an organizer can open shows nothing of another organization: not its rows,
and not its names in the filter sidebar or in form choices.

The other organization's rows all carry the marker "ZQX" (event name and slug, organization, attendee, room, ...),
so one substring check per page covers rows, filters and choices. Every list, filter and
form of the admin is covered, including django-celery-beat's periodic tasks.
"""

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from events.models import ApiKey, Block, Connection, NotRelevant
from recommendations.models import BatchRecommendation, FunnelEvent, MatchmakingRule, ModelVersion, TrainingRun
from recommendations.personalize.models import RemoteResource
from recommendations.schedules import event_schedules_sync
from tests.factories import (
    AttendeeFactory,
    ContentFactory,
    EventFactory,
    InteractionFactory,
    InterestTagFactory,
    OrganizationFactory,
    RoomFactory,
)

from .factories import organizer

pytestmark = pytest.mark.django_db

# The hyphen keeps the marker out of random tokens on the page (CSRF tokens are letters and digits only),
# which once made this test fail by chance.
MARK = "ZQX-leak"


def _rows(event, label: str):
    a = AttendeeFactory(event=event, display_name=f"{label} attendee", external_id=f"{label}-a")
    b = AttendeeFactory(event=event, display_name=f"{label} other", external_id=f"{label}-b")
    room = RoomFactory(event=event, name=f"{label} room", external_id=f"{label}-room")
    ContentFactory(event=event, title=f"{label} content", external_id=f"{label}-content")
    tag = InterestTagFactory(event=event, label=f"{label} tag", slug=f"{label.lower()}-tag")
    InteractionFactory(attendee=a, room=room, client_event_id=f"{label}-ce")
    Connection.objects.create(event=event, requester=a, recipient=b)
    Block.objects.create(event=event, blocker=b, blocked=a)
    NotRelevant.objects.create(event=event, attendee=a, target=b)
    ApiKey.objects.create(organization=event.organization, name=f"{label} key", prefix=f"{label}pfx", hashed_key="x")
    version = ModelVersion.objects.create(event=event, number=1, input_fingerprint=label)
    TrainingRun.objects.create(event=event, message=f"{label} run")
    TrainingRun.objects.create(event=event, kind=TrainingRun.Kind.PERSONALIZE, message=f"{label} remote run")
    BatchRecommendation.objects.create(event=event, attendee=a, source="rules", computed_at=timezone.now())
    FunnelEvent.objects.create(event=event, viewer=a, suggested=b, stage="shown", source="rules", model_version=version)
    MatchmakingRule.objects.create(event=event, kind="boost_tag", tag=tag, value=1.5, note=f"{label} rule")
    RemoteResource.objects.create(event=event, kind="campaign", name=f"{label}-campaign")
    event_schedules_sync(event=event)


@pytest.fixture
def organizer_client(client):
    mine = EventFactory(name="Mine summit", slug="mine-summit")
    theirs = EventFactory(
        name=f"{MARK} summit", slug=f"{MARK.lower()}-summit", organization=OrganizationFactory(name=f"{MARK} org")
    )
    _rows(mine, "Mine")
    _rows(theirs, MARK)
    assert PeriodicTask.objects.filter(name__contains=MARK.lower()).exists()  # the marker is there to leak
    client.force_login(organizer(mine.organization))
    return client


CHANGELISTS = [
    "events_organization",
    "events_event",
    "events_apikey",
    "events_interesttag",
    "events_room",
    "events_content",
    "events_attendee",
    "events_interaction",
    "events_connection",
    "events_block",
    "events_notrelevant",
    "recommendations_modelversion",
    "recommendations_trainingrun",
    "recommendations_batchrecommendation",
    "recommendations_funnelevent",
    "recommendations_matchmakingrule",
    "personalize_personalizerun",
    "personalize_remoteresource",
    "django_celery_beat_periodictask",
]


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_admin_list_shows_nothing_of_another_organization(organizer_client, changelist):
    response = organizer_client.get(reverse(f"admin:{changelist}_changelist"))
    assert response.status_code == 200
    assert MARK.lower() not in response.content.decode().lower()  # slugs carry it in lower case


ADD_FORMS = [
    "events_event",
    "events_interesttag",
    "events_room",
    "events_content",
    "events_attendee",
    "recommendations_matchmakingrule",
]


@pytest.mark.parametrize("model", ADD_FORMS)
def test_admin_add_form_offers_nothing_of_another_organization(organizer_client, model):
    response = organizer_client.get(reverse(f"admin:{model}_add"))
    assert response.status_code == 200
    assert MARK.lower() not in response.content.decode().lower()
