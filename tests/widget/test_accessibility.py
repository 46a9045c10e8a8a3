"""Accessibility, checked in the system Chromium: axe-core (the version axe-playwright-python
bundles) on every attendee page and the organizers' dashboard finds no serious or critical
violation; the widget's actions work from the keyboard alone; live updates are announced politely.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from events import meetings, messages, services
from events.models import Connection, MeetingPlace, MeetingWindow, NotRelevant
from events.presence import presence_join
from tests.factories import AttendeeFactory, ContentFactory, InterestTagFactory, LiveEventFactory, RoomFactory
from tests.live import chromium
from tests.widget.test_browser import login_url, server, sign_in  # noqa: F401  (server: the fixture)

pytestmark = pytest.mark.browser

SERIOUS = {"serious", "critical"}


def axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def _event():
    event = LiveEventFactory(slug="a11y", name="Accessible Summit")
    tag = InterestTagFactory(event=event, label="Postgres")
    hall = RoomFactory(event=event, external_id="hall", name="Main hall")
    ContentFactory(event=event, external_id="talk", title="Keynote recording")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    ada.interests.add(tag)
    people = []
    for name in ("Bob Kahn", "Cyd Charisse"):
        person = AttendeeFactory(event=event, external_id=name[:3].lower(), display_name=name, headline="Engineer")
        person.interests.add(tag)
        people.append(person)
    presence_join(event=event, attendee_id=ada.pk, room_id=hall.pk, at=timezone.now())
    # Meetings: one to answer (with its slot choices) and one booked (with its calendar link).
    base = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    MeetingWindow.objects.create(event=event, starts_at=base, ends_at=base + timedelta(hours=2))
    MeetingPlace.objects.create(event=event, name="Table 1")
    bob, cyd = people
    meetings.meeting_propose(requester=bob, recipient=ada, starts=[base, base + timedelta(minutes=15)], message="Hi")
    booked = meetings.meeting_propose(requester=cyd, recipient=ada, starts=[base + timedelta(minutes=30)])
    meetings.meeting_accept(meeting=booked, by=ada, start=base + timedelta(minutes=30))
    # A conversation with a message each way, with someone else (a connection leaves the widget).
    dee = AttendeeFactory(event=event, external_id="dee", display_name="Dee Dee")
    asked = services.connection_request(requester=dee, recipient=ada)
    services.connection_respond(connection=asked, responder=ada, accept=True)
    messages.message_send(connection=asked, sender=dee, body="Hello Ada")
    messages.message_send(connection=asked, sender=ada, body="Hello Dee")
    return ada


def test_attendee_pages_have_no_serious_axe_violations(settled_db, server):  # noqa: F811
    login = login_url(server, _event())
    thread = f"connections/{Connection.objects.get().pk}/messages/"
    found = {}
    with chromium() as browser:
        page = browser.new_page()
        sign_in(page, login)
        for path in (
            "",
            "rooms/hall/",
            "content/talk/",
            "connections/",
            "consents/",
            "profile/",
            "people/",
            "meetings/",
            "meetings/new/cyd/",
            thread,
        ):
            page.goto(f"{server}/e/a11y/{path}")
            page.wait_for_selector("[data-mm-widget] .mmw-card")
            found[path or "lobby"] = axe_violations(page)
        for name, path in (("home", "/"), ("about", "/e/a11y/about/")):
            page.goto(f"{server}{path}")
            found[name] = axe_violations(page)
        anonymous = browser.new_page()
        anonymous.goto(f"{server}/e/a11y/consents/")  # the sign-in page (403)
        found["sign-in"] = axe_violations(anonymous)
    assert found == {page: [] for page in found}


def test_the_widget_is_usable_from_the_keyboard_and_announces_updates_politely(settled_db, server):  # noqa: F811
    from playwright.sync_api import expect

    ada = _event()
    login = login_url(server, ada)
    with chromium() as browser:
        page = browser.new_page()
        sign_in(page, login)
        widget = page.locator("[data-mm-widget]")
        expect(widget.locator(".mmw-card")).to_have_count(2)
        assert widget.locator("[aria-live='polite']").count() == 1
        first = widget.locator(".mmw-card").first
        name = first.locator(".mmw-name").inner_text().split("\n")[0].replace("in your room", "").strip()
        # Tab to the first card's "Not relevant" and press Enter: no mouse anywhere.
        page.locator("body").focus()
        for _ in range(60):
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement && document.activeElement.dataset.action")
            if focused == "not-relevant":
                break
        assert focused == "not-relevant"
        page.keyboard.press("Enter")
        expect(widget.locator(".mmw-card", has_text=name)).to_have_count(0)
    assert NotRelevant.objects.filter(attendee=ada, target__display_name=name).exists()
