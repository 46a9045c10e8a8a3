"""The attendee's pages: sign-in by link, who may see them, consents, connections."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.api.auth import attendee_login_token
from events.enums import ConnectionStatus
from events.models import Connection, RoomVisit
from events.services import connection_request
from portal.views import LOGIN_LINK_INVALID, NOT_AN_ATTENDEE
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def summit():
    event = EventFactory(slug="summit", name="Summit")
    RoomFactory(event=event, external_id="hall", name="Main hall")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob")
    return event, ada, bob


def signed_in(attendee) -> Client:
    client = Client()
    token = attendee_login_token(attendee=attendee)
    response = client.get(reverse("portal:login-link", kwargs={"event": attendee.event.slug, "token": token}))
    assert response.status_code == 302
    return client


def test_login_link_signs_in_and_links_a_user(summit):
    _, ada, _ = summit
    client = signed_in(ada)
    ada.refresh_from_db()
    assert (ada.user.username, ada.user.has_usable_password()) == (f"attendee-{ada.pk}", False)
    response = client.get("/e/summit/")
    assert response.status_code == 200
    assert b"Main hall" in response.content and b"People to meet" in response.content


def test_login_link_forged_or_of_another_event_is_refused(summit):
    _, ada, _ = summit
    EventFactory(slug="expo")
    token = attendee_login_token(attendee=ada)
    for path in ("/e/summit/login/forged/", f"/e/expo/login/{token}/"):
        response = Client().get(path)
        assert (response.status_code, response.context["message"]) == (403, LOGIN_LINK_INVALID)


def test_pages_refuse_anonymous_and_other_events(summit):
    _, ada, _ = summit
    EventFactory(slug="expo")
    assert Client().get("/e/summit/").context["message"] == NOT_AN_ATTENDEE
    response = signed_in(ada).get("/e/expo/")
    assert (response.status_code, response.context["message"]) == (403, NOT_AN_ATTENDEE)


def test_widget_first_paint_shows_suggestions_with_reason(summit):
    event, ada, bob = summit
    tag = InterestTagFactory(event=event, label="Postgres")
    ada.interests.add(tag)
    bob.interests.add(tag)
    response = signed_in(ada).get("/e/summit/")
    assert [i["external_id"] for i in response.context["widget"]["items"]] == ["bob"]
    assert b"Shared interest: Postgres" in response.content


def test_consents_page_saves_the_three_choices(summit):
    _, ada, _ = summit
    client = signed_in(ada)
    response = client.post("/e/summit/consents/", {"consent_training": "on"})
    assert response.context["saved"] is True
    ada.refresh_from_db()
    assert (ada.consent_be_recommended, ada.consent_receive_recommendations, ada.consent_training) == (
        False,
        False,
        True,
    )


def test_connections_page_accepts_a_request_to_me_only(summit):
    _, ada, bob = summit
    request = connection_request(requester=bob, recipient=ada)
    assert signed_in(bob).post(f"/e/summit/connections/{request.pk}/respond/", {"accept": "1"}).status_code == 404
    response = signed_in(ada).post(f"/e/summit/connections/{request.pk}/respond/", {"accept": "1"})
    assert response.status_code == 302
    assert Connection.objects.get().status == ConnectionStatus.ACCEPTED


def test_simulate_traffic_moves_people_and_walks_everyone_out(transactional_db):
    now = timezone.now()
    event = EventFactory(
        slug="busy",
        live_starts_at=now - timedelta(hours=1),
        live_ends_at=now + timedelta(hours=1),
        on_demand_ends_at=now + timedelta(days=1),
    )
    for i in range(3):
        RoomFactory(event=event, external_id=f"r{i}")
    for _ in range(6):
        AttendeeFactory(event=event)
    call_command("simulate_traffic", event="busy", walkers=6, median_stay=0.05, duration=1.5, seed=1, verbosity=0)
    visits = RoomVisit.objects.filter(event=event)
    assert visits.count() > 0
    assert visits.filter(left_at__isnull=True).count() == 0
