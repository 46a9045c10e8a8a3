"""Acceptance, in the system Chromium against a real daphne server (WebSockets and all) on the
test database: two attendees see each other appear, live, when they share a room; a block
removes each from the other's widget. A screenshot of the widget is saved under test-artifacts/."""

import threading
from pathlib import Path

import pytest
from django.urls import reverse

from events.services import login_link_issue
from tests.factories import AttendeeFactory, EventFactory, LiveEventFactory, RoomFactory
from tests.live import asgi_server, chromium, needs_redis_layer, server_env

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LIVE_SECONDS = 15_000  # ms, Playwright's unit: how long "within a few seconds" may take here


@pytest.fixture(scope="module")
def server(django_db_setup):
    """daphne on the test database (same Redis for cache and channels), once for the module."""
    with asgi_server(server_env(CELERY_BROKER_URL="memory://")) as base:
        yield base


# The embed test's host page is served by Playwright itself; Chromium files such a page in the
# public address space and would refuse it any loopback server (Local Network Access). In real
# life the platform and our server are both public: lift the check for that test only.
LOCAL_NETWORK_CHECKS_OFF = (
    "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessRespectPreflightResults,"
    "BlockInsecurePrivateNetworkRequests"
)


def login_url(base, attendee):
    _, token = login_link_issue(attendee=attendee, minutes=30)
    return base + reverse("portal:login-link", kwargs={"event": attendee.event.slug, "token": token})


def sign_in(page, url):
    """Open the link and press its button, as an attendee does: the link's page spends it."""
    page.goto(url)
    page.click("#pt-sign-in")
    page.wait_for_url("**/e/*/")


def test_two_attendees_see_each_other_live_and_a_block_removes_both(settled_db, server):

    event = LiveEventFactory(slug="live-summit", name="Live Summit")
    RoomFactory(event=event, external_id="hall", name="Main hall")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace", headline="Engineer")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob Kahn", headline="Networks")
    ada_login, bob_login = login_url(server, ada), login_url(server, bob)
    with chromium() as browser:
        _live_scenario(browser, server, ada_login, bob_login)
    assert list(ada.blocks_made.values_list("blocked__external_id", flat=True)) == ["bob"]


def _live_scenario(browser, server, ada_login, bob_login):
    from playwright.sync_api import expect

    ada_page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    bob_page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    # Ada sits in the main hall; Bob is in the lobby. Neither has a reason to meet yet: each is in
    # the other's list only because nobody else is at the event ("also at this event").
    sign_in(ada_page, ada_login)
    expect(ada_page.locator("h1")).to_have_text("Welcome, Ada Lovelace")
    ada_page.goto(f"{server}/e/live-summit/rooms/hall/")
    expect(ada_page.locator("[data-mm-presence-text]")).to_have_text("You are in this room", timeout=LIVE_SECONDS)
    sign_in(bob_page, bob_login)
    ada_widget = ada_page.locator("[data-mm-widget]")
    bob_widget = bob_page.locator("[data-mm-widget]")
    expect(ada_widget.locator(".mmw-card .mmw-reason")).to_have_text("Also at this event")
    expect(bob_widget.locator(".mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)

    # Bob walks into the hall: both widgets show the other, with the room as the reason, no reload.
    bob_page.get_by_role("link", name="Main hall").click()
    for widget, other in ((ada_widget, "Bob Kahn"), (bob_widget, "Ada Lovelace")):
        card = widget.locator(".mmw-card", has_text=other)
        expect(card).to_have_count(1, timeout=LIVE_SECONDS)
        expect(card.locator(".mmw-reason")).to_contain_text("In 'Main hall' with you right now")
        expect(card.locator(".mmw-here")).to_have_text("in your room")
    expect(ada_page.locator("[data-mm-here]")).to_have_text("Bob Kahn", timeout=LIVE_SECONDS)
    ARTIFACTS.mkdir(exist_ok=True)
    ada_widget.screenshot(path=str(ARTIFACTS / "widget.png"))
    ada_page.screenshot(path=str(ARTIFACTS / "room-page.png"))

    # Ada blocks Bob: he leaves her list at once, and she leaves his by a push.
    ada_widget.locator(".mmw-card", has_text="Bob Kahn").get_by_role("button", name="Block").click()
    expect(ada_widget.locator(".mmw-card", has_text="Bob Kahn")).to_have_count(0)
    expect(bob_widget.locator(".mmw-card", has_text="Ada Lovelace")).to_have_count(0, timeout=LIVE_SECONDS)

    # Bob leaves the hall: Ada's room page hears the change (one "left", not the room's list).
    bob_page.close()
    expect(ada_page.locator("[data-mm-here]")).to_have_text("Nobody else yet.", timeout=LIVE_SECONDS)


def test_embedded_widget_on_a_platform_page_renders_and_acts_with_its_token(settled_db, server):
    from django.utils import timezone

    from events.api.auth import attendee_token_issue
    from events.models import Connection, NotRelevant
    from events.presence import presence_join
    from tests.factories import InterestTagFactory

    event = EventFactory(slug="embed-summit", name="Embed Summit")
    tag = InterestTagFactory(event=event, label="Postgres")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob Kahn")
    ada.interests.add(tag)
    bob.interests.add(tag)
    # Bob is online (in another room): "Online now" says nothing about the two of them, so the
    # card leads with what they share and the generic reason follows.
    presence_join(event=event, attendee_id=bob.pk, room_id=RoomFactory(event=event).pk, at=timezone.now())
    token = attendee_token_issue(attendee=ada)
    host_page = (
        "<!doctype html><html><body style='font-family:sans-serif;background:#fafafa;padding:2rem'>"
        "<h1>Platform.example agenda</h1><div style='width:24rem'>"
        f"<script src='{server}/static/matchmaking/widget.js' data-event='embed-summit' data-attendee='ada' "
        f"data-token='{token}'></script></div></body></html>"
    )
    with chromium([LOCAL_NETWORK_CHECKS_OFF]) as browser:
        _embedded_scenario(browser, host_page)
    assert not NotRelevant.objects.exists()  # marked, then undone
    assert list(Connection.objects.values_list("requester__external_id", "recipient__external_id")) == [("ada", "bob")]


def _embedded_scenario(browser, host_page):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 900, "height": 700})
    # Another origin than the server's: REST needs CORS, the socket needs the token to pass.
    page.route(
        "http://platform.test/**", lambda route: route.fulfill(status=200, content_type="text/html", body=host_page)
    )
    page.goto("http://platform.test/agenda")
    widget = page.locator("[data-mm-widget]")
    card = widget.locator(".mmw-card", has_text="Bob Kahn")
    expect(card).to_have_count(1, timeout=LIVE_SECONDS)
    expect(card.locator(".mmw-r")).to_have_text(["Shared interest: Postgres", "Online now"])
    expect(widget.locator(".mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "embedded-widget.png"))
    with page.expect_response(lambda r: r.url.endswith("/not-relevant/") and r.request.method == "POST") as posted:
        card.get_by_role("button", name="Not relevant").click()
    assert posted.value.status == 201
    expect(widget.locator(".mmw-card", has_text="Bob Kahn")).to_have_count(0)
    # The widget says what happened, politely, with an Undo that takes the mark back (a DELETE
    # across origins: CORS lets it through), and Bob returns.
    toast = widget.locator("[role=status]")
    expect(toast).to_contain_text("Bob Kahn will not be suggested again.")
    with page.expect_response(lambda r: r.url.endswith("/not-relevant/bob/") and r.request.method == "DELETE") as undo:
        toast.get_by_role("button", name="Undo").click()
    assert undo.value.status == 204
    expect(widget.locator(".mmw-card", has_text="Bob Kahn")).to_have_count(1, timeout=LIVE_SECONDS)
    expect(toast).to_contain_text("Bob Kahn is back in your suggestions.")
    # Connect: the button says it is sending until the server answers, then the card goes.
    held = []  # the request waits here until the test lets it go
    page.route(
        "**/connections/", lambda route: held.append(route) if route.request.method == "POST" else route.continue_()
    )
    card.get_by_role("button", name="Connect").click()
    expect(card.get_by_role("button", name="Sending\u2026")).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()
    expect(toast).to_contain_text("Request sent to Bob Kahn.", timeout=LIVE_SECONDS)
    expect(widget.locator(".mmw-card", has_text="Bob Kahn")).to_have_count(0)


@needs_redis_layer
def test_widget_refetches_over_rest_when_a_message_skips_a_number(settled_db, server):
    """The client's half of the sequence contract: a diff numbered past the next one is not
    applied (the widget cannot know what it missed); the widget re-fetches its list over REST and
    shows what the server says, not what the diff claimed."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from playwright.sync_api import expect

    from events import groups

    event = LiveEventFactory(slug="gap-summit")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    ghost = {"external_id": "ghost", "display_name": "Nobody Real", "headline": "", "company": ""}
    ghost |= {"score": 1.0, "here_now": False, "reasons": []}
    ada_login = login_url(server, ada)  # the ORM before Playwright's event loop runs in this thread
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        sign_in(page, ada_login)
        widget = page.locator("[data-mm-widget]")
        expect(widget.locator(".mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)
        seq = int(widget.get_attribute("data-seq") or 0)
        diff = {"ids": ["ghost"], "added": [{"index": 0, "item": ghost}], "removed": [], "moved": [], "changed": []}
        message = {"type": groups.SUGGESTIONS_CHANGED, "seq": seq + 2, "event": event.slug, **diff}
        # From another thread: Playwright's sync API runs an event loop in this one.
        send = threading.Thread(
            target=async_to_sync(get_channel_layer().group_send), args=(groups.attendee_group(ada.pk), message)
        )
        with page.expect_request(lambda r: "/recommendations/" in r.url, timeout=LIVE_SECONDS) as refetch:
            send.start()
            send.join(10)
        assert refetch.value.method == "GET"
        expect(widget).to_have_attribute("data-seq", str(seq + 2), timeout=LIVE_SECONDS)
        expect(widget.locator(".mmw-card", has_text="Nobody Real")).to_have_count(0)

        # Control: the same diff, numbered next, is applied as it is, without a re-fetch.
        fetches: list[str] = []
        page.on("request", lambda r: fetches.append(r.url) if "/recommendations/" in r.url else None)
        message["seq"] = seq + 3
        send = threading.Thread(
            target=async_to_sync(get_channel_layer().group_send), args=(groups.attendee_group(ada.pk), message)
        )
        send.start()
        send.join(10)
        expect(widget.locator(".mmw-card", has_text="Nobody Real")).to_have_count(1, timeout=LIVE_SECONDS)
        expect(widget).to_have_attribute("data-seq", str(seq + 3))
        assert fetches == []


@needs_redis_layer
def test_widget_resyncs_over_rest_when_the_numbers_go_backwards(settled_db, server):
    """A server whose count restarted (the widget holds 7, the next message says 1) is not a
    duplicate to ignore: the widget re-fetches its list over REST, takes the server's number, and
    applies the next message after it (before, it ignored every message numbered 7 or less)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from playwright.sync_api import expect

    from events import groups

    event = LiveEventFactory(slug="restart-summit")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    ghost = {"external_id": "ghost", "display_name": "Nobody Real", "headline": "", "company": ""}
    ghost |= {"score": 1.0, "here_now": False, "reasons": []}
    diff = {"ids": ["ghost"], "added": [{"index": 0, "item": ghost}], "removed": [], "moved": [], "changed": []}
    ada_login = login_url(server, ada)

    def send(seq):
        message = {"type": groups.SUGGESTIONS_CHANGED, "seq": seq, "event": event.slug, **diff}
        thread = threading.Thread(
            target=async_to_sync(get_channel_layer().group_send), args=(groups.attendee_group(ada.pk), message)
        )
        thread.start()
        thread.join(10)

    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        sign_in(page, ada_login)
        widget = page.locator("[data-mm-widget]")
        expect(widget.locator(".mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)
        page.evaluate("document.querySelector('[data-mm-widget]').mmWidget.seq = 7")
        with page.expect_request(lambda r: "/recommendations/" in r.url, timeout=LIVE_SECONDS) as refetch:
            send(1)
        assert refetch.value.method == "GET"
        expect(widget).to_have_attribute("data-seq", "1", timeout=LIVE_SECONDS)
        expect(widget.locator(".mmw-card", has_text="Nobody Real")).to_have_count(0)  # REST's list, not the diff

        send(2)  # next after the server's number: applied as it is
        expect(widget.locator(".mmw-card", has_text="Nobody Real")).to_have_count(1, timeout=LIVE_SECONDS)
        expect(widget).to_have_attribute("data-seq", "2")


# Logs, in the page's own order, everything the widget is given to show: the first paint, each
# WebSocket message of the suggestions socket, each REST list it fetches.
WIDGET_LOG_SCRIPT = """
(() => {
  const log = (entry) => window.mmLog(entry);
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("mm-widget-items");
    if (el) log({kind: "paint", items: JSON.parse(el.textContent)});
  });
  const Native = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    if (String(url).includes("/suggestions/")) {
      ws.addEventListener("message", (e) => log({kind: "ws", msg: JSON.parse(e.data)}));
    }
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  const nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    return nativeFetch(input, init).then((r) => {
      if (/\\/recommendations\\/\\?/.test(String(input.url || input)) && r.ok) {
        r.clone().json().then((d) => log({kind: "rest", items: d.items}));
      }
      return r;
    });
  };
})();
"""


def expected_funnel_shown(logs: dict[str, list[dict]]) -> tuple[dict[str, int], dict[tuple[str, str], str]]:
    """What "shown" should count, per source, from what each viewer's pages were given: every item
    of a paint or a REST list; of a hello, the people not on the list last painted or pushed; of
    a push, the people it adds. Also the source of each pair's last showing (later stages go to it)."""
    shown: dict[str, int] = {}
    last_source: dict[tuple[str, str], str] = {}
    for viewer, entries in logs.items():
        on_screen: set[str] = set()
        for entry in entries:
            if entry["kind"] in ("paint", "rest"):
                new = entry["items"]
                if entry["kind"] == "paint":
                    on_screen = {i["external_id"] for i in new}
            elif entry["msg"]["type"] == "hello":
                new = [i for i in entry["msg"]["items"] if i["external_id"] not in on_screen]
                on_screen = set(entry["msg"]["ids"])
            elif entry["msg"]["type"] == "suggestions.changed":
                new = [a["item"] for a in entry["msg"]["added"]]
                on_screen = set(entry["msg"]["ids"])
            else:
                continue
            for item in new:
                shown[item["source"]] = shown.get(item["source"], 0) + 1
                last_source[(viewer, item["external_id"])] = item["source"]
    return shown, last_source


def test_the_dashboard_funnel_counts_exactly_what_a_scripted_widget_session_did(settled_db, server):
    """Every surface records its stage: the pages' first paint, the widget's hello and pushes
    ("shown"), "Why?" in the widget ("opened"), Connect in the widget ("requested"), Accept on the
    connections page ("accepted"). The dashboard's per-source funnel then equals, number for
    number, what the two browsers were shown and did. (Before, only the REST API recorded "shown",
    and a Connect made in the widget was dropped from the funnel.)"""
    from playwright.sync_api import expect

    from dashboard.selectors import dashboard_snapshot
    from recommendations.serving.funnel import funnel_flush_shown

    event = LiveEventFactory(slug="funnel-summit", name="Funnel Summit")
    RoomFactory(event=event, external_id="hall", name="Main hall")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob Kahn")
    AttendeeFactory(event=event, external_id="cyd", display_name="Cyd Charisse")
    ada_login, bob_login = login_url(server, ada), login_url(server, bob)
    logs: dict[str, list[dict]] = {"ada": [], "bob": []}

    with chromium() as browser:
        pages = {}
        for who in ("ada", "bob"):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.expose_binding("mmLog", lambda source, entry, who=who: logs[who].append(entry))
            context.add_init_script(WIDGET_LOG_SCRIPT)
            pages[who] = context.new_page()
        ada_page, bob_page = pages["ada"], pages["bob"]
        ada_widget = ada_page.locator("[data-mm-widget]")

        sign_in(ada_page, ada_login)
        ada_page.goto(f"{server}/e/funnel-summit/rooms/hall/")
        expect(ada_page.locator("[data-mm-presence-text]")).to_have_text("You are in this room", timeout=LIVE_SECONDS)
        sign_in(bob_page, bob_login)
        expect(bob_page.locator("[data-mm-widget] .mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)
        bob_page.get_by_role("link", name="Main hall").click()
        card = ada_widget.locator(".mmw-card", has_text="Bob Kahn")
        expect(card.locator(".mmw-here")).to_have_text("in your room", timeout=LIVE_SECONDS)

        with ada_page.expect_response(lambda r: r.url.endswith("/recommendations/opened/")) as opened:
            card.get_by_role("button", name="Why?").click()
        assert opened.value.json() == {"recorded": True}
        expect(card.locator(".mmw-why li").first).to_contain_text("In 'Main hall' with you right now")
        card.get_by_role("button", name="Less").click()  # closing and opening again is not a second "opened"
        card.get_by_role("button", name="Why?").click()
        with ada_page.expect_response(lambda r: r.url.endswith("/connections/") and r.request.method == "POST") as req:
            card.get_by_role("button", name="Connect").click()
        assert req.value.status == 201

        bob_page.goto(f"{server}/e/funnel-summit/connections/")
        bob_page.get_by_role("button", name="Accept").click()
        bob_page.wait_for_load_state()
        ada_page.wait_for_timeout(2000)  # the pushes the acceptance caused have arrived
    # The browsers are closed: nothing is shown any more.

    funnel_flush_shown()
    shown, last_source = expected_funnel_shown(logs)
    pair_source = last_source[("ada", "bob")]
    expected = {source: {"shown": n, "opened": 0, "requested": 0, "accepted": 0} for source, n in shown.items()}
    for stage in ("opened", "requested", "accepted"):
        expected[pair_source][stage] = 1
    by_source = {
        row["source"]: {stage: row[stage] for stage in ("shown", "opened", "requested", "accepted")}
        for row in dashboard_snapshot(event=event)["funnel"]["by_source"]
    }
    assert sum(shown.values()) >= 5, logs  # the session showed people through paints and pushes
    assert any(e["kind"] == "ws" and e["msg"]["type"] == "suggestions.changed" for e in logs["ada"]), logs["ada"]
    assert by_source == expected, logs


def test_an_attendee_switches_the_pages_to_their_own_time_zone_and_back(settled_db, server):
    from datetime import UTC, datetime, timedelta

    from playwright.sync_api import expect

    event = LiveEventFactory(slug="tz-summit", name="TZ Summit", timezone="Europe/Paris")
    start = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    RoomFactory(event=event, external_id="k8s", name="Kubernetes", starts_at=start, ends_at=start + timedelta(hours=1))
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    login = login_url(server, ada)
    with chromium() as browser:
        page = browser.new_context(timezone_id="America/New_York").new_page()
        sign_in(page, login)
        times = page.locator(".pt-room", has_text="Kubernetes").locator(".pt-muted").first
        expect(times).to_have_text("09:00\u201310:00 CET")
        page.get_by_role("button", name="Use my time zone").click()
        expect(page.locator("[data-mm-tz]")).to_contain_text("America/New_York (your time)")
        expect(times).to_have_text("03:00\u201304:00 EST")
        page.get_by_role("button", name="Use the event's time").click()
        expect(times).to_have_text("09:00\u201310:00 CET")


def test_a_profile_edit_changes_the_suggestions_the_widget_shows(settled_db, server):
    from playwright.sync_api import expect

    from tests.factories import InterestTagFactory

    event = LiveEventFactory(slug="profile-summit", name="Profile Summit")
    postgres = InterestTagFactory(event=event, label="Postgres", slug="postgres")
    InterestTagFactory(event=event, label="Kubernetes", slug="k8s")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob Kahn")
    bob.offers.add(postgres)
    login = login_url(server, ada)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, login)
        card = page.locator("[data-mm-widget] .mmw-card", has_text="Bob Kahn")
        expect(card).to_have_count(1)  # the only other attendee: listed as "also at this event"
        expect(card).not_to_contain_text("Postgres")
        page.get_by_role("link", name="Profile").click()
        page.get_by_label("Headline").fill("Database engineer")
        page.locator("fieldset", has_text="Seeks").get_by_label("Postgres").check()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").first).to_contain_text("Saved")
        expect(card.locator(".mmw-r").first).to_contain_text("Postgres", timeout=LIVE_SECONDS)
    ada.refresh_from_db()
    assert ada.headline == "Database engineer" and list(ada.seeks.all()) == [postgres]


def test_from_a_suggestion_to_a_booked_meeting_both_can_add_to_their_calendar(settled_db, server):
    """The whole path in two browsers: Ada connects from her widget, Bob accepts, Ada proposes two
    times, Bob takes the second, both see the meeting with its table and download a .ics that
    parses to the same entry."""
    from datetime import timedelta

    from django.utils import timezone
    from icalendar import Calendar
    from playwright.sync_api import expect

    from events.models import Meeting, MeetingPlace, MeetingWindow

    event = LiveEventFactory(slug="meet-summit", name="Meet Summit")
    base = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    MeetingWindow.objects.create(event=event, starts_at=base, ends_at=base + timedelta(hours=1))
    MeetingPlace.objects.create(event=event, name="Table 7")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob Kahn")
    ada_login, bob_login = login_url(server, ada), login_url(server, bob)
    with chromium() as browser:
        ada_page = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
        bob_page = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
        sign_in(ada_page, ada_login)
        card = ada_page.locator("[data-mm-widget] .mmw-card", has_text="Bob Kahn")
        card.get_by_role("button", name="Connect").click()
        expect(ada_page.get_by_role("status").first).to_contain_text("Request sent", timeout=LIVE_SECONDS)

        sign_in(bob_page, bob_login)
        bob_page.get_by_role("link", name="Connections").click()
        bob_page.get_by_role("button", name="Accept").click()
        expect(bob_page.get_by_role("link", name="Propose a meeting")).to_be_visible()

        ada_page.get_by_role("link", name="Connections").click()
        ada_page.get_by_role("link", name="Propose a meeting").click()
        slots = ada_page.locator("[data-mm-slots] input[type=checkbox]")
        expect(slots).to_have_count(4)  # an hour of 15-minute slots
        slots.nth(0).check()
        slots.nth(1).check()
        ada_page.get_by_label("Message (optional)").fill("Coffee at the table?")
        ada_page.get_by_role("button", name="Send").click()
        expect(ada_page.get_by_role("status").first).to_contain_text("Sent to Bob Kahn")

        bob_page.get_by_role("link", name="Meetings").click()
        offer = bob_page.locator("[data-mm-to-answer] li", has_text="Ada Lovelace")
        expect(offer).to_contain_text("Coffee at the table?")
        offer.get_by_role("radio").nth(1).check()
        offer.get_by_role("button", name="Accept this time").click()

        files = []
        for page in (bob_page, ada_page):
            page.get_by_role("link", name="Meetings").click()
            booked = page.locator("[data-mm-booked] li")
            expect(booked).to_have_count(1)
            expect(booked).to_contain_text("Table 7")
            with page.expect_download() as download:
                booked.get_by_role("link", name="Add to calendar (.ics)").click()
            files.append(Path(download.value.path()).read_bytes())
    meeting = Meeting.objects.get()
    assert (meeting.status, meeting.starts_at, meeting.place.name) == (
        "booked",
        base + timedelta(minutes=15),
        "Table 7",
    )
    assert files[0] == files[1]
    [entry] = Calendar.from_ical(files[0]).walk("VEVENT")
    assert entry.decoded("dtstart") == base + timedelta(minutes=15)
    assert str(entry["summary"]) == "Ada Lovelace and Bob Kahn" and str(entry["location"]) == "Table 7"


def test_two_attendees_exchange_messages_live_and_elsewhere_a_notice_says_one_came(settled_db, server):
    from playwright.sync_api import expect

    from events import services

    event = LiveEventFactory(slug="chat-summit", name="Chat Summit")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada Lovelace")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob Kahn")
    asked = services.connection_request(requester=ada, recipient=bob)
    services.connection_respond(connection=asked, responder=bob, accept=True)
    ada_login, bob_login = login_url(server, ada), login_url(server, bob)
    thread = f"{server}/e/chat-summit/connections/{asked.pk}/messages/"
    with chromium() as browser:
        ada_page, bob_page = browser.new_page(), browser.new_page()
        sign_in(ada_page, ada_login)
        sign_in(bob_page, bob_login)
        ada_page.get_by_role("link", name="Connections").click()
        ada_page.get_by_role("link", name="Messages").click()
        bob_page.goto(thread)
        for page in (ada_page, bob_page):  # both sockets are up before the first message
            expect(page.locator("[data-mm-widget] .mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)
        ada_page.get_by_label("Your message").fill("Meet at table 7?")
        ada_page.get_by_role("button", name="Send").click()
        expect(bob_page.locator("[data-mm-thread] .pt-msg")).to_have_text(
            ["Ada Lovelace Meet at table 7?"], timeout=LIVE_SECONDS
        )
        bob_page.get_by_label("Your message").fill("Yes, see you there")
        bob_page.get_by_role("button", name="Send").click()
        expect(ada_page.locator("[data-mm-thread] .pt-msg")).to_have_text(
            ["Ada Lovelace Meet at table 7?", "Bob Kahn Yes, see you there"], timeout=LIVE_SECONDS
        )
        expect(ada_page.locator("[data-mm-thread] .pt-msg.pt-mine")).to_have_count(1)  # her own, once
        # Away from the thread, a message shows as a polite notice.
        ada_page.get_by_role("link", name="Lobby").click()
        expect(ada_page.locator("[data-mm-widget] .mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)
        bob_page.get_by_label("Your message").fill("Running 5 min late")
        bob_page.get_by_role("button", name="Send").click()
        expect(ada_page.get_by_role("status").first).to_contain_text("Running 5 min late", timeout=LIVE_SECONDS)
    assert list(asked.messages.values_list("number", "sender__external_id")) == [(1, "ada"), (2, "bob"), (3, "bob")]
