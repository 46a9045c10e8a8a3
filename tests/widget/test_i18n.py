"""Languages: English and French for everything an attendee reads. The pages (with the switcher on
each), the widget's own words (Django's JavaScript catalogue), the reasons of a suggestion (made in
English by the backends and kept so in caches and pushes, translated for the reader on the page,
over REST and on the socket), the services' refusals, and the emails (in the language the attendee
chose). The catalogues are complete, compiled, and in step with the code."""

import gettext
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polib
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.template.base import Lexer, TokenType
from django.test import Client
from django.utils import formats, timezone, translation

from events import meetings
from events.api.auth import attendee_token_issue
from events.models import Attendee, MeetingWindow
from events.notifications import meeting_mail
from matchmaking_site.asgi import application
from matchmaking_site.sentences import localize
from recommendations.backends.local.reasons import MUTUAL_ONE_TEXT, REPEAT_TEXT, SPENT_SAME_TIME_TEXT, SPENT_TEXT
from recommendations.backends.rules import SHARED_INTEREST_TEXT
from recommendations.digest import digest_mail
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale"
DOMAINS = ("django", "djangojs")


def _world():
    event = EventFactory(slug="summit", name="Summit", timezone="Europe/Paris")
    tag = InterestTagFactory(event=event, label="Postgres")
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada", user=UserFactory())
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob", email="bob@example.org")
    for person in (ada, bob):
        person.interests.add(tag)
    return event, ada, bob


# --- Sentences made in English, read in French -----------------------------------------------------


def test_localize_translates_fixed_and_composed_sentences_and_leaves_others_alone():
    spent = SPENT_TEXT.format(minutes=40, name="Scaling Postgres")
    spent_together = SPENT_SAME_TIME_TEXT.format(minutes=40, name="Scaling Postgres")
    with translation.override("fr"):
        assert localize(REPEAT_TEXT.format(n=3)) == "vous étiez ensemble dans 3 sessions"
        assert localize(MUTUAL_ONE_TEXT) == "1 personne avec qui vous avez tous deux été en session"
        # The longer template wins: the same-time sentence is not read as a room named "... at the same time".
        assert localize(spent_together) == "vous avez tous deux passé 40 min dans « Scaling Postgres » au même moment"
        assert localize(spent) == "vous avez tous deux passé 40 min dans « Scaling Postgres »"
        assert localize(meetings.TAKEN).startswith("Ce créneau vient d'être réservé")
        assert localize("A sentence nobody marked") == "A sentence nobody marked"
    with translation.override("en"):
        assert localize(spent) == spent


# --- The catalogues -------------------------------------------------------------------------------

PYTHON_FORMAT = re.compile(r"%\((\w+)\)s|\{(\w+)\}")


def _fields(text: str) -> set[str]:
    return {a or b for a, b in PYTHON_FORMAT.findall(text)}


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_french_catalogue_is_complete_compiled_and_keeps_every_placeholder(domain):
    po = polib.pofile(str(LOCALE / "fr" / "LC_MESSAGES" / f"{domain}.po"))
    assert po.metadata["Plural-Forms"] == "nplurals=2; plural=(n > 1);"
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []
    assert [e.msgid for e in po.obsolete_entries()] == []
    for entry in po:
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert _fields(text) == _fields(entry.msgid), entry.msgid
    with open(LOCALE / "fr" / "LC_MESSAGES" / f"{domain}.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for entry in po:
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            assert compiled.ngettext(msgid, entry.msgid_plural, 1) == entry.msgstr_plural[0]
            assert compiled.ngettext(msgid, entry.msgid_plural, 5) == entry.msgstr_plural[1]
        else:
            assert compiled.gettext(msgid) == entry.msgstr, f"{domain}.mo is older than {domain}.po: make messages"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext (xgettext) collects the strings")
def test_the_catalogues_hold_every_string_marked_in_the_code(tmp_path):
    """`makemessages` run on a copy of the code finds no string the committed catalogues lack (and
    none they hold that the code dropped): whoever marks a string also translates it."""
    for name in ("manage.py", "matchmaking_site", "events", "portal", "recommendations", "dashboard", "templates"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
        else:
            shutil.copy(source, tmp_path / name)
    shutil.copytree(ROOT / "static" / "matchmaking", tmp_path / "static" / "matchmaking")
    shutil.copytree(LOCALE, tmp_path / "locale")
    for domain in DOMAINS:
        subprocess.run(
            [sys.executable, "manage.py", "makemessages", "-l", "fr", "-d", domain, "--no-obsolete", "-v", "0"],
            cwd=tmp_path,
            check=True,
            env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "matchmaking_site.settings"},
        )
        fresh = polib.pofile(str(tmp_path / "locale" / "fr" / "LC_MESSAGES" / f"{domain}.po"))
        committed = polib.pofile(str(LOCALE / "fr" / "LC_MESSAGES" / f"{domain}.po"))
        assert {(e.msgctxt, e.msgid) for e in fresh} == {(e.msgctxt, e.msgid) for e in committed}, "make messages"


ATTENDEE_TEMPLATES = [
    ROOT / "templates" / "base.html",
    ROOT / "templates" / "home.html",
    *sorted((ROOT / "templates" / "portal").glob("*.html")),
]
SPOKEN_ATTRIBUTES = re.compile(r'\b(?:title|aria-label|placeholder|alt)="([^"{]*[A-Za-z][^"{]*)"')
TAG = re.compile(r"<[^>]*>")
CODE = re.compile(r"<(script|style)\b.*?</\1>", re.DOTALL)


@pytest.mark.parametrize("path", ATTENDEE_TEMPLATES, ids=lambda p: p.name)
def test_attendee_templates_say_nothing_outside_the_translation_tags(path):
    """Every word an attendee reads in a template is inside {% translate %} / {% blocktranslate %}
    (or is data: a variable). Markup, code and punctuation may stand outside."""
    outside, depth = [], 0
    for token in Lexer(path.read_text()).tokenize():
        if token.token_type == TokenType.BLOCK:
            word = token.contents.split()[0]
            depth += word in ("blocktranslate", "blocktrans", "comment")
            depth -= word in ("endblocktranslate", "endblocktrans", "endcomment")
            outside.append("\x00")
        elif token.token_type == TokenType.VAR:
            outside.append("\x00")
        elif token.token_type == TokenType.TEXT and not depth:
            outside.append(token.contents)
    page = CODE.sub(" ", "".join(outside))
    loose = SPOKEN_ATTRIBUTES.findall(page)
    text = re.sub(r"&\w+;", " ", TAG.sub(" ", page))
    loose += re.findall(r"[A-Za-z][A-Za-z' ]*[A-Za-z]", text)
    assert loose == []


# --- The switcher, the pages, REST, the socket, the emails -----------------------------------------


@pytest.mark.django_db
def test_the_switcher_turns_the_pages_french_and_the_attendee_keeps_the_choice():
    _event, ada, _bob = _world()
    client = Client()
    client.force_login(ada.user)
    english = client.get("/e/summit/").content.decode()
    assert '<html lang="en">' in english and "Shared interest: Postgres" in english
    switched = client.post("/language/", {"language": "fr", "next": "/e/summit/"})
    assert (switched.status_code, switched["Location"]) == (302, "/e/summit/")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    ada.refresh_from_db()
    assert ada.language == "fr"
    page = client.get("/e/summit/").content.decode()
    assert '<html lang="fr">' in page
    for said in ("Personnes à rencontrer", "Intérêt commun : Postgres", "Entrer en contact", "Bienvenue, Ada"):
        assert said in page
    assert "Shared interest" not in page and "People to meet" not in page
    # The widget's own words come from the JavaScript catalogue the page loads first.
    assert '<script src="/jsi18n/"></script>' in page
    catalogue = client.get("/jsi18n/").content.decode()
    assert "Pourquoi ?" in catalogue and "ne vous sera plus sugg" in catalogue
    # A code the site does not speak changes nothing; a foreign `next` is not followed.
    refused = client.post("/language/", {"language": "xx", "next": "https://evil.example/"})
    assert refused["Location"] == "/"
    ada.refresh_from_db()
    assert ada.language == "fr"


@pytest.mark.django_db
def test_a_services_refusal_reads_in_the_page_language():
    event, ada, bob = _world()
    start = (timezone.now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    MeetingWindow.objects.create(event=event, starts_at=start, ends_at=start + timedelta(hours=2))
    client = Client()
    client.force_login(ada.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    late = (start + timedelta(hours=5)).isoformat()
    page = client.post(f"/e/summit/meetings/new/{bob.external_id}/", {"slot": [late]}).content.decode()
    assert "n&#x27;est pas un créneau des heures de rendez-vous" in page


@pytest.mark.django_db
def test_rest_suggestions_speak_the_readers_language():
    _event, ada, _bob = _world()
    client = Client()
    client.force_login(ada.user)
    url = "/api/v1/events/summit/attendees/ada/recommendations/"
    english = client.get(url).json()["items"][0]["reasons"][0]["text"]
    french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").json()["items"][0]["reasons"][0]["text"]
    assert english == SHARED_INTEREST_TEXT.format(labels="Postgres")
    assert french == "intérêt commun : Postgres"


async def test_the_socket_speaks_the_language_of_the_cookie_or_the_browser(transactional_db, close_thread_connections):
    _event, ada, _bob = await sync_to_async(_world)()
    token = await sync_to_async(attendee_token_issue)(attendee=ada)
    heard = {}
    for name, header in (
        ("cookie", (b"cookie", f"{settings.LANGUAGE_COOKIE_NAME}=fr".encode())),
        ("browser", (b"accept-language", b"fr-CA,fr;q=0.9,en;q=0.5")),
        ("none", (b"accept-language", b"")),
    ):
        ws = WebsocketCommunicator(application, f"/ws/events/summit/suggestions/?token={token}", headers=[header])
        connected, _ = await ws.connect()
        assert connected
        hello = await ws.receive_json_from()
        heard[name] = hello["items"][0]["reasons"][0]["text"]
        await ws.disconnect()
    assert heard == {
        "cookie": "intérêt commun : Postgres",
        "browser": "intérêt commun : Postgres",
        "none": "shared interest: Postgres",
    }


@pytest.mark.django_db
def test_emails_are_written_in_the_language_the_attendee_chose(mailoutbox):
    event, ada, bob = _world()
    Attendee.objects.filter(pk=bob.pk).update(language="fr")
    start = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    MeetingWindow.objects.create(event=event, starts_at=start, ends_at=start + timedelta(hours=1))
    meeting = meetings.meeting_propose(requester=ada, recipient=bob, starts=[start], message="Café ?")
    asked = meeting_mail(meeting_id=meeting.pk, attendee_id=bob.pk, what="meeting_request")
    assert asked.subject == "Ada aimerait vous rencontrer"
    assert "Horaires proposés (Europe/Paris)" in asked.body
    assert "Ne plus recevoir les e-mails sur les demandes et réservations de rendez-vous" in asked.body
    local = timezone.localtime(start, timezone=ZoneInfo("Europe/Paris"))
    with translation.override("fr"):
        slot = formats.date_format(local, "D d M, H:i")
    with translation.override("en"):
        assert slot != formats.date_format(local, "D d M, H:i")  # the days' names differ
    assert f"  - {slot}" in asked.body
    digest = digest_mail(attendee_id=bob.pk)
    assert digest.subject == "Personnes à rencontrer à Summit"
    assert "  - Ada: intérêt commun : Postgres" in digest.body
    Attendee.objects.filter(pk=bob.pk).update(language="")
    assert digest_mail(attendee_id=bob.pk).subject == "People to meet at Summit"


# --- In the browser --------------------------------------------------------------------------------


@pytest.mark.browser
def test_in_the_browser_the_switcher_turns_the_widget_and_its_notices_french(settled_db):
    from tests.live import asgi_server, chromium, server_env
    from tests.widget.test_browser import login_url

    _world()
    ada = Attendee.objects.get(external_id="ada")
    with asgi_server(server_env(CELERY_BROKER_URL="memory://")) as base:
        link = login_url(base, ada)  # before the browser: Playwright's loop runs in this thread
        with chromium() as browser:
            _switch_to_french_and_act(browser, link)


def _switch_to_french_and_act(browser, link):
    from playwright.sync_api import expect

    from tests.widget.test_browser import LIVE_SECONDS, sign_in

    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    sign_in(page, link)
    page.select_option("#mm-language", "fr")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("h1")).to_have_text("Bienvenue, Ada")
    widget = page.locator("[data-mm-widget]")
    expect(widget.locator(".mmw-status.mmw-live")).to_have_count(1, timeout=LIVE_SECONDS)
    # The socket's hello re-renders the card in the widget's script: its words and the reason.
    expect(widget.locator(".mmw-card [data-action=why]")).to_have_text("Pourquoi ?")
    expect(widget.locator(".mmw-card .mmw-reason")).to_have_text("Intérêt commun : Postgres")
    widget.get_by_role("button", name="Pas pertinent").click()
    expect(widget.locator("[data-mm-announce]")).to_contain_text("Bob ne vous sera plus suggéré.")
    expect(widget.get_by_role("button", name="Annuler")).to_be_visible()


@pytest.mark.browser
def test_the_embedded_widget_speaks_the_language_of_the_platform_pages_browser(settled_db):
    """On a platform's page (another origin), with a French browser: the widget reads its words
    from the JSON catalogue (CORS), and REST and the socket give the reasons in French."""
    from events.api.auth import attendee_token_issue
    from tests.live import asgi_server, chromium, server_env
    from tests.widget.test_browser import LOCAL_NETWORK_CHECKS_OFF

    _world()
    token = attendee_token_issue(attendee=Attendee.objects.get(external_id="ada"))
    with asgi_server(server_env(CELERY_BROKER_URL="memory://")) as base:
        host_page = (
            "<!doctype html><html lang='fr'><body><h1>Agenda</h1>"
            f"<script src='{base}/static/matchmaking/widget.js' data-event='summit' data-attendee='ada' "
            f"data-token='{token}'></script></body></html>"
        )
        with chromium([LOCAL_NETWORK_CHECKS_OFF]) as browser:
            _embedded_in_french(browser, host_page)


def _embedded_in_french(browser, host_page):
    from playwright.sync_api import expect

    from tests.widget.test_browser import LIVE_SECONDS

    page = browser.new_context(locale="fr-FR", viewport={"width": 900, "height": 700}).new_page()
    page.route("http://platform.test/**", lambda r: r.fulfill(status=200, content_type="text/html", body=host_page))
    page.goto("http://platform.test/agenda")
    widget = page.locator("[data-mm-widget]")
    expect(widget.locator("h2")).to_have_text("Personnes à rencontrer", timeout=LIVE_SECONDS)
    card = widget.locator(".mmw-card", has_text="Bob")
    expect(card.locator(".mmw-reason")).to_have_text("Intérêt commun : Postgres", timeout=LIVE_SECONDS)
    assert page.evaluate("typeof window.gettext") == "undefined"  # nothing left on the host's page
    card.get_by_role("button", name="Pas pertinent").click()
    expect(widget.locator("[data-mm-announce]")).to_contain_text("Bob ne vous sera plus suggéré.")
