"""Every admin list an organizer can open shows nothing of another organization: not its rows,
and not its names in the filter sidebar or in form choices.

The other organization's rows all carry the marker "ZQX" (event name and slug, organization, attendee, room, ...),
so one substring check per page covers rows, filters and choices. Every list, filter and
form of the admin is covered. django-celery-beat's raw rows are for superusers only
(tests/trust/test_admin_tenancy.py); every form field of every admin is checked there too.
"""

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from tests.factories import EventFactory, OrganizationFactory

from .factories import organizer, tenant_rows

pytestmark = pytest.mark.django_db

# The hyphen keeps the marker out of random tokens on the page (CSRF tokens are letters and digits only),
# which once made this test fail by chance.
MARK = "ZQX-leak"


@pytest.fixture
def organizer_client(client):
    mine = EventFactory(name="Mine summit", slug="mine-summit")
    theirs = EventFactory(
        name=f"{MARK} summit", slug=f"{MARK.lower()}-summit", organization=OrganizationFactory(name=f"{MARK} org")
    )
    tenant_rows(mine, "Mine")
    tenant_rows(theirs, MARK)
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
    "events_webhookendpoint",
    "events_webhookdelivery",
    "events_meetingwindow",
    "events_meetingplace",
    "events_meeting",
    "recommendations_modelversion",
    "recommendations_trainingrun",
    "recommendations_batchrecommendation",
    "recommendations_funnelevent",
    "recommendations_matchmakingrule",
    "personalize_personalizerun",
    "personalize_remoteresource",
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
    "events_webhookendpoint",
    "events_meetingwindow",
    "events_meetingplace",
    "recommendations_matchmakingrule",
]


@pytest.mark.parametrize("model", ADD_FORMS)
def test_admin_add_form_offers_nothing_of_another_organization(organizer_client, model):
    response = organizer_client.get(reverse(f"admin:{model}_add"))
    assert response.status_code == 200
    assert MARK.lower() not in response.content.decode().lower()
