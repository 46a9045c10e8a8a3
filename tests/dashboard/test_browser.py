"""Acceptance, in the system Chromium against a real daphne server on the test database: an
organizer opens the dashboard, interactions arrive through the REST API, and the counters and the
chart move without a reload; an organizer of another organization gets a 404. A screenshot is
saved under test-artifacts/."""

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from django.conf import settings
from django.utils import timezone

from events.services import api_key_create
from tests.factories import AttendeeFactory, ContentFactory, EventFactory, InteractionFactory, RoomFactory
from tests.live import asgi_server, chromium, needs_redis_layer, server_env

from .factories import PASSWORD, organizer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("short_lived_connections"),
    needs_redis_layer,
]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 20_000  # how long Playwright waits for the page to show a pushed change


@pytest.fixture
def server(settled_db):
    """daphne against the test database, with the same Redis for the channel layer (the push
    crosses processes through it); downstream processing runs inline in the server."""
    with asgi_server(server_env(REDIS_URL=settings.REDIS_URL, CELERY_BROKER_URL="memory://")) as base:
        yield base


@pytest.fixture
def world():
    now = timezone.now()
    event = EventFactory(
        name="Browser Summit",
        slug="browser-summit",
        timezone="Europe/Paris",
        live_starts_at=now - timedelta(hours=1),
        live_ends_at=now + timedelta(hours=2),
        on_demand_ends_at=now + timedelta(days=7),
    )
    room = RoomFactory(event=event, name="Main stage")
    ContentFactory(event=event, external_id="talk-1", title="Opening talk")
    ada, bob = (AttendeeFactory(event=event, external_id=x, display_name=x.title()) for x in ("ada", "bob"))
    for i, who in enumerate((ada, bob, ada)):
        InteractionFactory(attendee=who, room=room, occurred_at=now - timedelta(minutes=40 - 5 * i))
    _, secret = api_key_create(organization=event.organization, name="platform")
    me = organizer(event.organization, username="orga")
    stranger = organizer(username="stranger")
    return event, secret, me, stranger


def _post_interactions(base: str, slug: str, secret: str, n: int, prefix: str = "browser") -> dict:
    at = (timezone.now() - timedelta(seconds=30)).isoformat()
    items = [
        {
            "client_event_id": f"{prefix}-{i}",
            "attendee_id": "bob" if i % 2 else "ada",
            "context_kind": "content",
            "context_id": "talk-1",
            "type": "view_content",
            "value": 120,
            "occurred_at": at,
        }
        for i in range(n)
    ]
    request = Request(
        f"{base}/api/v1/events/{slug}/interactions/",
        data=json.dumps({"interactions": items}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {secret}"},
        method="POST",
    )
    with urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _login(page, base: str, username: str, next_url: str):
    page.goto(f"{base}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def _open_dashboard(browser, base: str, username: str, dashboard: str):
    """A page logged in as `username` on the dashboard, its live socket connected."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    _login(page, base, username, dashboard)
    expect(page.locator("#mm-live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    return page


def test_dashboard_moves_live_as_interactions_arrive(server, world):
    from playwright.sync_api import expect

    event, secret, me, stranger = world
    dashboard = f"/admin/events/event/{event.pk}/dashboard/"
    with chromium() as browser:
        page = _open_dashboard(browser, server, me.username, dashboard)
        expect(page.locator("#mm-total")).to_have_text("3")
        expect(page.locator("#mm-chart svg")).to_have_attribute("data-total", "3")
        expect(page.locator("#mm-qualifying-of")).to_have_text("3 / 1,000")
        page.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads

        result = _post_interactions(server, event.slug, secret, 6)
        assert [item["status"] for item in result["results"]] == ["accepted"] * 6

        expect(page.locator("#mm-total")).to_have_text("9", timeout=WAIT_MS)
        expect(page.locator("#mm-chart svg")).to_have_attribute("data-total", "9", timeout=WAIT_MS)
        expect(page.locator("#mm-qualifying-of")).to_have_text("9 / 1,000")
        expect(page.locator("#mm-active")).to_have_text("2")  # ada and bob, in the last 5 minutes
        expect(page.locator("#mm-top-content")).to_contain_text("Opening talk")
        assert page.evaluate("window.__sameDocument") == "yes"

        # Buttons fit the backend: the local model has no remote resources to tear down.
        expect(page.locator("[data-action=teardown]")).to_have_count(0)
        # A button asks first, then says what happened, in the page.
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("[data-action=batch]")
        expect(page.locator("#mm-outcome")).to_contain_text("2 batch lists written", timeout=WAIT_MS)
        expect(page.locator("#mm-runs")).to_contain_text("Batch recommendations", timeout=WAIT_MS)
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("[data-action=retrain]")
        expect(page.locator("#mm-outcome")).to_have_text("Cancelled.")
        assert page.evaluate("window.__sameDocument") == "yes"
        page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)

        other = browser.new_page()
        _login(other, server, stranger.username, "/admin/")
        assert other.goto(f"{server}{dashboard}").status == 404
        assert other.goto(f"{server}{dashboard}snapshot.json").status == 404


def test_each_batch_is_one_push_and_at_most_one_refetch_then_quiet(settled_db, world, tmp_path):
    """One sender of `engagement.update` and one counter: each committed batch pushes once, the
    page re-reads its snapshot at most once per push, and then stays quiet. (Two senders with two
    counters made every snapshot look older than the last push, and the page re-read it every
    second for as long as it stayed open.)"""
    from playwright.sync_api import expect

    event, secret, me, _ = world
    dashboard = f"/admin/events/event/{event.pk}/dashboard/"
    log = tmp_path / "server.log"
    env = server_env(REDIS_URL=settings.REDIS_URL, CELERY_BROKER_URL="memory://", LOG_LEVEL="INFO")
    with asgi_server(env, log=log) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        frames: list[dict] = []
        closes: list[int] = []

        def on_socket(ws):
            if "/dashboard/" in ws.url:
                ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))
                ws.on("close", lambda _: closes.append(1))

        page.on("websocket", on_socket)
        fetches: list[float] = []
        page.on("request", lambda r: fetches.append(time.monotonic()) if "snapshot.json" in r.url else None)
        _login(page, base, me.username, dashboard)
        expect(page.locator("#mm-live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        expect(page.locator("#mm-total")).to_have_text("3")
        page.wait_for_timeout(2000)
        before = len(fetches)

        for batch in range(3):
            _post_interactions(base, event.slug, secret, 2, prefix=f"b{batch}")
            expect(page.locator("#mm-total")).to_have_text(str(5 + 2 * batch), timeout=WAIT_MS)
        page.wait_for_timeout(2000)  # the last push's refetch, if any, is done
        settled = len(fetches)
        page.wait_for_timeout(8000)  # then nothing moves: the page must not ask again

        pushes = [f for f in frames if f["type"] == "engagement.update"]
        assert [p["reason"] for p in pushes] == ["interactions"] * 3, pushes
        assert [p["seq"] for p in pushes] == list(range(pushes[0]["seq"], pushes[0]["seq"] + 3)), pushes
        assert [p["interactions"] for p in pushes] == [2, 2, 2]
        assert 1 <= settled - before <= len(pushes), (before, settled, pushes)
        # A reconnect while nothing moved does not re-read either: the hello says the last push,
        # which the page already shows. (Not yet fixed, and why this matters: with redis-py 8,
        # channels-redis's idle receive times out on the client and daphne closes a quiet socket
        # with 1011 about every 5 s, django/channels_redis#422; the page reconnects each time.)
        assert len(fetches) == settled, (
            f"{len(fetches) - settled} snapshot requests while nothing moved ({len(closes)} reconnects)"
        )


def test_the_seeded_demo_dashboard_shows_a_running_event(server, settings, tmp_path):
    """What `make demo` shows an organizer: the seeded event after `dashboard_demo`, live, with its
    model serving, people in rooms, a funnel and the model's row. Screenshot: dashboard-demo.png."""
    from io import StringIO

    from django.core.management import call_command
    from playwright.sync_api import expect

    from events.models import Event

    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"  # this process trains; the server only reads the rows
    call_command("seed_demo", slug="demo", verbosity=0, stdout=StringIO())
    call_command("dashboard_demo", event="demo", stdout=StringIO())
    event = Event.objects.get(slug="demo")
    me = organizer(event.organization, username="demo-orga")
    dashboard = f"/admin/events/event/{event.pk}/dashboard/"
    with chromium() as browser:
        page = _open_dashboard(browser, server, me.username, dashboard)
        expect(page.locator(".mm-phase")).to_have_text("Live (trained model)")
        expect(page.locator("#mm-serving")).to_have_text("Local model v1")
        expect(page.locator("#mm-occupancy li").first).to_be_visible()
        expect(page.locator("#mm-funnel")).to_contain_text("Local model")
        expect(page.locator("[data-mm-meetings-summary]")).to_contain_text(re.compile(r"\d+ booked · \d+ held"))
        expect(page.locator("#mm-models")).to_contain_text("Published (serving)")
        # how v1 ranks for this event, and each figure beside the obvious lists' on the same split
        expect(page.locator("#mm-models .mm-ranker")).to_contain_text(
            re.compile(r"\((learned for this event|the obvious list won on this event)\)")
        )
        expect(page.locator("#mm-models")).to_contain_text(re.compile(r"vs (popularity|repeat \+ popularity) 0\.\d"))
        page.screenshot(path=str(ARTIFACTS / "dashboard-demo.png"), full_page=True)


def test_an_organizer_rolls_back_a_model_version_from_the_dashboard_with_progress_shown(
    server, world, settings, tmp_path
):
    """Publish and roll back from the Model versions table: a confirmation first, the button busy
    and the outcome line counting seconds while the server works, then what happened; the table
    shows the version now serving."""
    from playwright.sync_api import expect

    from recommendations.jobs.training import run_training
    from recommendations.models import ModelVersion

    event, _, me, _ = world
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"  # the artifact's absolute path is what counts
    run_training(event=event, trigger="test")
    room = RoomFactory(event=event, name="Side room")
    for who in event.attendees.all():
        InteractionFactory(attendee=who, room=room, occurred_at=timezone.now() - timedelta(minutes=10))
    run_training(event=event, trigger="test")
    serving = ModelVersion.objects.get(event=event, status=ModelVersion.Status.PUBLISHED).number
    other = 1 if serving == 2 else 2
    label = f"Roll back to v{other}" if other < serving else f"Publish v{other}"
    dashboard = f"/admin/events/event/{event.pk}/dashboard/"
    with chromium() as browser:
        page = _open_dashboard(browser, server, me.username, dashboard)
        button = page.get_by_role("button", name=label)
        held = []
        page.route("**/publish/", lambda route: held.append(route))
        page.once("dialog", lambda dialog: dialog.accept())
        button.click()
        expect(button).to_have_attribute("aria-busy", "true")
        expect(page.locator("#mm-outcome")).to_have_text(re.compile(rf"^{label}… \d+ s$"))
        held[0].continue_()
        expect(page.locator("#mm-outcome")).to_have_text(re.compile(rf"^v{other} now serves in place of v{serving}\."))
        expect(page.locator("#mm-models .mm-pill-published")).to_have_count(1, timeout=WAIT_MS)
        row = page.locator("#mm-models tr", has=page.locator(".mm-pill-published"))
        expect(row).to_contain_text(f"v{other}", timeout=WAIT_MS)
    assert ModelVersion.objects.get(event=event, status=ModelVersion.Status.PUBLISHED).number == other


def test_the_event_list_fits_a_laptop_screen_with_the_dashboard_link_in_view(server, world):
    """At 1280x900, beside the filters and the navigation: no column is pushed out of the table's
    view (before, the seventh column and the dashboard link sat under the filter panel), and the
    live window reads in each event's own zone, labelled."""
    event, _, me, _ = world
    for i in range(3):
        EventFactory(organization=event.organization, name=f"Another event with a long name {i}", slug=f"other-{i}")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(page, server, me.username, "/admin/events/event/")
        page.wait_for_selector("#result_list")
        seen = page.evaluate(
            """() => [...document.querySelectorAll("#result_list tr")].map((row) => {
                const cells = [...row.children].map((cell) => {
                  const r = cell.getBoundingClientRect();
                  const hit = document.elementFromPoint(Math.min(r.right - 2, r.left + 8), r.top + r.height / 2);
                  return cell.contains(hit);
                });
                return cells.every(Boolean);
            })"""
        )
        links = page.locator("#result_list .mm-dashboard-link")
        assert links.count() == 4
        for i in range(4):
            box = links.nth(i).bounding_box()
            assert box and box["x"] + box["width"] <= 1280
        window = page.locator("#result_list tr", has_text="Browser Summit").locator("td.field-live_window")
        text = window.inner_text()
    assert all(seen), seen
    assert text.endswith(("CET", "CEST")), text
