"""The attendee pages' layout, measured in the system Chromium (not judged from screenshots): on a
phone (390x844) nothing overflows sideways, the widget is in the first screen, and every control
of the widget and the page's navigation is a touch target of at least 44 px; on a laptop
(1280x900) nothing overflows and the widget sits beside the rooms, in the first screen too. The
lobby is the one the issue was found on: 20 rooms with people in them, 40 on-demand items."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.presence import presence_join
from tests.factories import AttendeeFactory, ContentFactory, InterestTagFactory, LiveEventFactory, RoomFactory
from tests.live import chromium
from tests.widget.test_browser import login_url, server, sign_in  # noqa: F401  (server: the fixture)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}
TOUCH = 44

MEASURE = """() => {
  const doc = document.documentElement;
  const widget = document.querySelector("[data-mm-widget]").getBoundingClientRect();
  const controls = [...document.querySelectorAll(
    "[data-mm-widget] button, [data-mm-widget] a, .pt-nav a, [data-mm-tz] button")]
    .filter(el => el.offsetParent !== null)
    .map(el => ({text: el.textContent.trim(), h: el.getBoundingClientRect().height,
                 w: el.getBoundingClientRect().width}));
  return {overflow: doc.scrollWidth - doc.clientWidth, widgetTop: widget.top, widgetLeft: widget.left,
          widgetRight: widget.right, controls};
}"""


def _crowded_lobby():
    event = LiveEventFactory(slug="crowded", name="A conference with a rather long name, as real ones have")
    tag = InterestTagFactory(event=event, label="Distributed systems")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    ada.interests.add(tag)
    rooms = [
        RoomFactory(event=event, external_id=f"r{i}", name=f"Track {i}: scaling the hard parts of production systems")
        for i in range(20)
    ]
    now = timezone.now()
    for i in range(30):
        person = AttendeeFactory(
            event=event,
            display_name=f"Attendee number {i} with a long display name",
            headline="Principal engineer, platform reliability and developer experience",
            company="An organization whose name does not fit on one line",
        )
        person.interests.add(tag)
        presence_join(event=event, attendee_id=person.pk, room_id=rooms[i % 20].pk, at=now - timedelta(minutes=1))
    for i in range(40):
        ContentFactory(event=event, title=f"On demand: talk {i} about a subject worth a long title")
    return ada


def test_phone_layout_has_no_overflow_the_widget_first_and_touch_sized_controls(settled_db, server):  # noqa: F811
    login = login_url(server, _crowded_lobby())
    with chromium() as browser:
        page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
        sign_in(page, login)
        page.wait_for_selector("[data-mm-widget] .mmw-card")
        m = page.evaluate(MEASURE)
    assert m["overflow"] <= 0, m["overflow"]
    assert 0 <= m["widgetTop"] < PHONE["height"], m["widgetTop"]
    small = [c for c in m["controls"] if c["h"] < TOUCH or c["w"] < TOUCH]
    assert m["controls"] and not small, small


def test_laptop_layout_has_no_overflow_and_the_widget_beside_the_rooms(settled_db, server):  # noqa: F811
    login = login_url(server, _crowded_lobby())
    with chromium() as browser:
        page = browser.new_context(viewport=LAPTOP).new_page()
        sign_in(page, login)
        page.wait_for_selector("[data-mm-widget] .mmw-card")
        m = page.evaluate(MEASURE)
    assert m["overflow"] <= 0, m["overflow"]
    assert 0 <= m["widgetTop"] < LAPTOP["height"] / 2, m["widgetTop"]
    assert m["widgetLeft"] > LAPTOP["width"] / 2 and m["widgetRight"] <= LAPTOP["width"], m


def test_the_meeting_pages_fit_a_phone_with_touch_sized_choices(settled_db, server):  # noqa: F811
    from events import meetings
    from events.models import MeetingPlace, MeetingWindow

    event = LiveEventFactory(slug="meet-phone", name="A conference with a rather long name, as real ones have")
    base = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    MeetingWindow.objects.create(event=event, starts_at=base, ends_at=base + timedelta(hours=3))
    MeetingPlace.objects.create(event=event, name="Virtual table 1", url="https://meet.example/t1")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Attendee with a long display name, really")
    starts = [base + timedelta(minutes=15 * i) for i in range(10)]
    meetings.meeting_propose(requester=bob, recipient=ada, starts=starts, message="A message " * 20)
    login = login_url(server, ada)
    measure = """() => ({overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      controls: [...document.querySelectorAll(".pt-main button, .pt-main a.mmw-btn, .pt-main label.pt-slot")]
        .filter(el => el.offsetParent !== null)
        .map(el => ({text: el.textContent.trim(), h: el.getBoundingClientRect().height,
                     w: el.getBoundingClientRect().width}))})"""
    found = {}
    with chromium() as browser:
        page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
        sign_in(page, login)
        for path in ("meetings/", "meetings/new/bob/"):
            page.goto(f"{server}/e/meet-phone/{path}")
            found[path] = page.evaluate(measure)
    for path, m in found.items():
        assert m["overflow"] <= 0, (path, m["overflow"])
        small = [c for c in m["controls"] if c["h"] < TOUCH]
        assert m["controls"] and not small, (path, small)
    assert (
        len(
            [
                c
                for c in found["meetings/"]["controls"]
                if c["text"].startswith(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
            ]
        )
        == 10
    )
