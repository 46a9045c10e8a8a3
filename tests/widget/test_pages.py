"""The attendee's pages: sign-in by link, who may see them, consents, connections."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.enums import ConnectionStatus
from events.models import Block, Connection, LoginLink, RoomVisit
from events.services import connection_request, login_link_issue
from portal.views import LOGIN_LINK_INVALID, NOT_AN_ATTENDEE, TZ_COOKIE
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def summit():
    event = EventFactory(slug="summit", name="Summit")
    RoomFactory(event=event, external_id="hall", name="Main hall")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob")
    return event, ada, bob


def link(attendee, minutes=30) -> str:
    _, token = login_link_issue(attendee=attendee, minutes=minutes)
    return reverse("portal:login-link", kwargs={"event": attendee.event.slug, "token": token})


def signed_in(attendee) -> Client:
    client = Client()
    response = client.post(link(attendee))
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
    _, token = login_link_issue(attendee=ada, minutes=30)
    for path in ("/e/summit/login/forged/", f"/e/expo/login/{token}/"):
        for response in (Client().get(path), Client().post(path)):
            assert (response.status_code, response.context["message"]) == (403, LOGIN_LINK_INVALID)


def test_opening_a_login_link_shows_its_expiry_and_spends_nothing(summit):
    """Mail scanners fetch links: a GET shows whom the link signs in and until when, and signs
    no one in; the page's button (a POST) does."""
    _, ada, _ = summit
    url = link(ada, minutes=20)
    client = Client()
    page = client.get(url)
    assert page.status_code == 200
    expires_at = LoginLink.objects.get(attendee=ada).expires_at
    html = page.content.decode()
    assert "Ada" in html and expires_at.strftime("%Y-%m-%d %H:%M") + " UTC" in html
    assert client.get("/e/summit/").status_code == 403  # not signed in by looking
    assert client.get(url).status_code == 200  # still unspent
    assert client.post(url).status_code == 302
    assert client.get("/e/summit/").status_code == 200


def test_a_login_link_works_once(summit):
    _, ada, _ = summit
    url = link(ada)
    assert Client().post(url).status_code == 302
    for response in (Client().get(url), Client().post(url)):
        assert (response.status_code, response.context["message"]) == (403, LOGIN_LINK_INVALID)
    assert LoginLink.objects.get(attendee=ada).used_at is not None


def test_a_login_link_expires(summit):
    _, ada, _ = summit
    url = link(ada, minutes=5)
    LoginLink.objects.filter(attendee=ada).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().post(url)
    assert (response.status_code, response.context["message"]) == (403, LOGIN_LINK_INVALID)
    assert LoginLink.objects.get(attendee=ada).used_at is None


def test_only_a_hash_of_the_token_is_stored(summit):
    _, ada, _ = summit
    url = link(ada)
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert not LoginLink.objects.filter(token_hash__contains=token).exists()
    assert len(LoginLink.objects.get(attendee=ada).token_hash) == 64


@pytest.mark.usefixtures("summit")
def test_the_command_prints_a_fresh_single_use_link_with_its_expiry(capsys):
    call_command("attendee_login_link", event="summit", attendee="ada", minutes=15)
    first = capsys.readouterr().out
    call_command("attendee_login_link", event="summit", attendee="ada")
    second = capsys.readouterr().out
    assert "single use, valid until" in first and "(15 min)" in first and "(30 min)" in second
    url_1, url_2 = first.split()[-1], second.split()[-1]
    assert url_1 != url_2
    assert Client().post(url_1.removeprefix("http://127.0.0.1:8000")).status_code == 302


@pytest.mark.usefixtures("summit")
def test_the_command_refuses_a_bad_lifetime_in_one_line():
    with pytest.raises(CommandError, match=r"^--minutes: 0 is not between 1 and 10080$"):
        call_command("attendee_login_link", event="summit", minutes=0)


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


def test_times_are_in_the_events_zone_labelled_or_in_the_attendees_own(summit):
    """One rule on every attendee page: the event's zone, labelled; an attendee who chose their own
    (the page's switch sets the cookie) reads times in it; a cookie that names no zone is ignored.
    Before, the lobby showed UTC with no label for an event in Europe/Paris."""
    event, ada, _ = summit
    event.timezone = "Europe/Paris"
    event.save()
    start = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    RoomFactory(event=event, external_id="k8s", name="Kubernetes", starts_at=start, ends_at=start + timedelta(hours=1))
    client = signed_in(ada)
    page = client.get("/e/summit/").content.decode()
    assert "09:00</time>\u201310:00 CET" in page
    assert "Times are in <strong>Europe/Paris</strong> (the event's time)" in page
    client.cookies[TZ_COOKIE] = "America/New_York"
    page = client.get("/e/summit/").content.decode()
    assert "03:00</time>\u201304:00 EST" in page
    assert "Times are in <strong>America/New_York</strong> (your time)" in page
    client.cookies[TZ_COOKIE] = "../../etc/passwd"
    assert "09:00</time>\u201310:00 CET" in client.get("/e/summit/").content.decode()


def test_an_attendee_who_turned_suggestions_off_is_told_so_with_the_way_back(summit):
    _, ada, _ = summit
    ada.consent_receive_recommendations = False
    ada.save()
    page = signed_in(ada).get("/e/summit/").content.decode()
    assert "You have turned suggestions off." in page
    assert '<a href="/e/summit/consents/">Turn them back on</a>' in page
    assert "This attendee has chosen" not in page


def test_the_events_public_page_says_what_when_and_how_to_sign_in_and_nothing_of_who(summit):
    event, ada, _ = summit
    event.timezone = "Europe/Paris"
    event.live_starts_at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    event.live_ends_at = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)
    event.on_demand_ends_at = datetime(2026, 12, 20, tzinfo=UTC)
    event.save()
    page = Client().get("/e/summit/about/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Summit" in html and "Main hall" in html
    assert "Thursday 10 December 2026, 09:00</time> \u2013 18:00 CET" in html
    assert "personal link in your invitation" in html
    assert "Ada" not in html and "Bob" not in html  # who attends is not public
    assert "manage.py" not in html and "make demo" not in html
    assert 'href="/e/summit/"' in signed_in(ada).get("/e/summit/about/").content.decode()  # the way in
    assert Client().get("/e/nope/about/").status_code == 404


def test_the_sign_in_page_speaks_to_attendees_and_the_home_page_leads_to_events(summit):
    page = Client().get("/e/summit/consents/")
    html = page.content.decode()
    assert page.status_code == 403
    assert "personal link in their invitation" in html and 'href="/e/summit/about/"' in html
    assert "manage.py" not in html and "make demo" not in html
    home = Client().get("/").content.decode()
    assert 'href="/e/summit/about/"' in home
    assert "Organizers: the admin" not in home


def test_an_incoming_request_shows_why_the_two_match(summit, settings, tmp_path):
    """What the requester saw beside Connect, the recipient sees beside the request: the model's
    evidence (a session they shared) and the declared one (an interest), personal first."""
    from recommendations.jobs.training import run_training
    from tests.factories import InteractionFactory

    event, ada, bob = summit
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    tag = InterestTagFactory(event=event, label="Postgres")
    ada.interests.add(tag)
    bob.interests.add(tag)
    hall = event.rooms.get(external_id="hall")
    others = [AttendeeFactory(event=event) for _ in range(3)]
    for i, person in enumerate([ada, bob, *others]):
        start = event.live_starts_at + timedelta(minutes=i)
        InteractionFactory(attendee=person, room=hall, occurred_at=start, value=2400)
    run_training(event=event, trigger="test")
    connection_request(requester=bob, recipient=ada)
    html = signed_in(ada).get("/e/summit/connections/").content.decode()
    why = html[html.index('aria-label="Why you match"') :].split("</ul>")[0]
    assert "Main hall" in why and "Postgres" in why
    assert why.index("Main hall") < why.index("Postgres")  # the model's, then the declared one


def test_a_profile_edit_changes_the_next_suggestions_and_the_next_training_inputs(
    summit, django_capture_on_commit_callbacks
):
    from events.enums import InteractionSource
    from events.models import Interaction
    from recommendations.serving.lists import recommendations_for

    event, ada, bob = summit
    postgres = InterestTagFactory(event=event, label="Postgres", slug="postgres")
    InterestTagFactory(event=event, label="Kubernetes", slug="k8s")
    bob.offers.add(postgres)
    client = signed_in(ada)
    before = recommendations_for(attendee=ada).items
    assert not any("Postgres" in r["text"] for item in before for r in item.reasons)
    page = client.get("/e/summit/profile/").content.decode()
    assert 'name="seeks"' in page and "Kubernetes" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/e/summit/profile/", {"headline": "DBA", "company": "Acme", "seeks": [postgres.pk]})
    assert response.status_code == 302 and response["Location"].endswith("/profile/?saved=1")
    ada.refresh_from_db()
    assert (ada.headline, ada.company, list(ada.seeks.all())) == ("DBA", "Acme", [postgres])
    [first, *_] = recommendations_for(attendee=ada).items
    assert first.external_id == "bob" and "Postgres" in first.reasons[0]["text"]
    # The next training sees the declaration as a questionnaire row.
    rows = Interaction.objects.filter(attendee=ada, source=InteractionSource.QUESTIONNAIRE)
    assert list(rows.values_list("interest__slug", flat=True)) == ["postgres"]


def test_the_profile_form_refuses_another_events_topic_and_keeps_what_was_there(summit):
    _, ada, _ = summit
    other = InterestTagFactory(event=EventFactory(slug="expo"), label="Elsewhere")
    response = signed_in(ada).post("/e/summit/profile/", {"headline": "New", "interests": [other.pk]})
    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    ada.refresh_from_db()
    assert ada.headline == "" and not ada.interests.exists()


def test_the_directory_lists_consenting_people_searchable_by_name_and_topic(summit):
    event, ada, bob = summit
    tag = InterestTagFactory(event=event, label="Postgres", slug="postgres")
    bob.interests.add(tag)
    AttendeeFactory(event=event, display_name="Cyd Private", consent_be_recommended=False)
    dan = AttendeeFactory(event=event, display_name="Dan Blocked")
    Block.objects.create(event=event, blocker=dan, blocked=ada)
    client = signed_in(ada)

    def names(html: str) -> list[str]:
        listed = html.split("pt-people-list", 1)[1].split("</ul>", 1)[0]
        return [n for n in ("Ada", "Bob", "Cyd Private", "Dan Blocked") if f"<strong>{n}</strong>" in listed]

    assert names(client.get("/e/summit/people/").content.decode()) == ["Bob"]
    assert names(client.get("/e/summit/people/", {"q": "bo"}).content.decode()) == ["Bob"]
    assert names(client.get("/e/summit/people/", {"q": "nobody"}).content.decode()) == []
    assert names(client.get("/e/summit/people/", {"tag": "postgres"}).content.decode()) == ["Bob"]
    AttendeeFactory(event=event, display_name="Eve Other")
    assert "Eve Other" not in client.get("/e/summit/people/", {"tag": "postgres"}).content.decode()
