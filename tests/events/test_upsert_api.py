"""The platform's bulk upserts of facts: statuses per item, merge semantics, references, limits,
tenancy, what they change downstream (suggestions, training inputs), and two batches at once."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from events import upserts
from events.api.facts import NOT_AN_OBJECT
from events.api.views import BATCH_NOT_LIST, BATCH_REQUIRED, BATCH_TOO_LARGE
from events.enums import InteractionSource
from events.ingestion import MAX_BATCH
from events.models import Attendee, Content, Interaction, InterestTag, Room
from events.services import api_key_create
from recommendations.serving.lists import recommendations_for
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory, RoomFactory


@pytest.fixture
def world(db):
    event = EventFactory(slug="summit")
    _, secret = api_key_create(organization=event.organization, name="platform")
    InterestTagFactory(event=event, slug="postgres", label="Postgres")
    InterestTagFactory(event=event, slug="k8s", label="Kubernetes")
    RoomFactory(event=event, external_id="hall")
    return event, secret


def post(secret, kind, items, slug="summit", client=None):
    envelope = kind.replace("-", "_")
    return (client or Client()).post(
        f"/api/v1/events/{slug}/{kind}/",
        {envelope: items},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )


def statuses(response):
    return [(r.get("external_id", r.get("slug")), r["status"], r.get("reason", "")) for r in response.json()["results"]]


def test_attendees_are_created_then_unchanged_then_updated_field_by_field(world):
    event, secret = world
    ada = {
        "external_id": "ada",
        "display_name": "Ada Lovelace",
        "headline": "Engines",
        "group": "speaker",
        "consent_training": False,
        "interests": ["postgres"],
        "seeks": ["k8s"],
        "planned_rooms": ["hall"],
    }
    first = post(secret, "attendees", [ada, {"external_id": "bob", "display_name": "Bob"}])
    assert first.status_code == 200
    assert first.json()["created"] == 2 and statuses(first) == [("ada", "created", ""), ("bob", "created", "")]
    row = Attendee.objects.get(event=event, external_id="ada")
    assert (row.display_name, row.headline, row.group) == ("Ada Lovelace", "Engines", "speaker")
    assert (row.consent_be_recommended, row.consent_receive_recommendations, row.consent_training) == (
        True,
        True,
        False,
    )
    assert [t.slug for t in row.interests.all()] == ["postgres"] and [t.slug for t in row.seeks.all()] == ["k8s"]
    assert [r.external_id for r in row.planned_rooms.all()] == ["hall"]

    again = post(secret, "attendees", [ada])
    assert statuses(again) == [("ada", "unchanged", "")] and again.json()["unchanged"] == 1

    # Only what the item holds changes; a list replaces the whole set.
    changed = post(secret, "attendees", [{"external_id": "ada", "company": "Analytical", "interests": ["k8s"]}])
    assert statuses(changed) == [("ada", "updated", "")]
    row.refresh_from_db()
    assert (row.display_name, row.headline, row.company) == ("Ada Lovelace", "Engines", "Analytical")
    assert [t.slug for t in row.interests.all()] == ["k8s"] and [t.slug for t in row.seeks.all()] == ["k8s"]
    links_only = post(secret, "attendees", [{"external_id": "ada", "planned_rooms": []}])
    assert statuses(links_only) == [("ada", "updated", "")] and not row.planned_rooms.exists()
    assert Attendee.objects.filter(event=event).count() == 2


def test_one_bad_item_never_rejects_the_others_and_every_reason_says_what(world):
    event, secret = world
    response = post(
        secret,
        "attendees",
        [
            {"external_id": "ok", "display_name": "Fine"},
            {"external_id": "typo", "display_name": "T", "interests": ["postgres", "postgress"]},
            {"external_id": "lost", "display_name": "L", "planned_rooms": ["nowhere"]},
            {"external_id": "nameless"},
            {"external_id": "ok", "display_name": "Again"},
            "not an object",
            {"external_id": "bad", "display_name": "B", "consent_training": "maybe"},
            {"display_name": "No id"},
        ],
    )
    assert response.status_code == 200
    got = statuses(response)
    assert got[0] == ("ok", "created", "")
    assert got[1][1] == "rejected" and "interests: no topic with slug 'postgress'" in got[1][2]
    assert got[2][1] == "rejected" and "planned_rooms: no room with external id 'nowhere'" in got[2][2]
    assert got[3] == ("nameless", "rejected", upserts.REQUIRED_ON_CREATE.format(field="display_name", kind="attendee"))
    assert got[4] == ("ok", "rejected", upserts.REPEATED.format(key="external_id", value="ok", first=0))
    assert got[5] == (None, "rejected", NOT_AN_OBJECT)
    assert got[6][:2] == ("bad", "rejected") and got[6][2].startswith("consent_training: ")
    assert got[7][:2] == (None, "rejected") and got[7][2].startswith("external_id: ")
    assert response.json()["created"] == 1 and response.json()["rejected"] == 7
    # Nothing of a rejected item was written.
    assert list(Attendee.objects.filter(event=event).values_list("external_id", flat=True)) == ["ok"]


def test_rooms_sessions_content_and_topics(world):
    event, secret = world
    tags = post(
        secret, "interest-tags", [{"slug": "rust", "label": "Rust"}, {"slug": "postgres", "label": "PostgreSQL"}]
    )
    assert statuses(tags) == [("rust", "created", ""), ("postgres", "updated", "")]
    assert InterestTag.objects.get(event=event, slug="postgres").label == "PostgreSQL"
    assert statuses(post(secret, "interest-tags", [{"slug": "Not a slug!", "label": "x"}]))[0][1] == "rejected"

    talk = {
        "external_id": "talk-1",
        "name": "Rust in production",
        "track": "Systems",
        "starts_at": "2026-12-06T09:00:00+01:00",
        "ends_at": "2026-12-06T10:00:00+01:00",
        "topics": ["rust"],
    }
    rooms = post(
        secret,
        "rooms",
        [
            talk,
            {"external_id": "naive", "name": "N", "starts_at": "2026-12-06T09:00:00"},
            {
                "external_id": "backwards",
                "name": "B",
                "starts_at": "2026-12-06T10:00:00Z",
                "ends_at": "2026-12-06T09:00:00Z",
            },
        ],
    )
    got = statuses(rooms)
    assert got[0] == ("talk-1", "created", "")
    assert got[1][:2] == ("naive", "rejected") and "offset" in got[1][2]
    assert got[2][:2] == ("backwards", "rejected") and got[2][2].startswith("ends_at (")
    session = Room.objects.get(event=event, external_id="talk-1")
    assert session.starts_at.isoformat() == "2026-12-06T08:00:00+00:00" and [t.slug for t in session.topics.all()] == [
        "rust"
    ]
    # Moving only the end before the stored start is refused against the stored start.
    later = post(secret, "rooms", [{"external_id": "talk-1", "ends_at": "2026-12-06T07:00:00Z"}])
    assert statuses(later)[0][1] == "rejected"
    session.refresh_from_db()
    assert session.ends_at.isoformat() == "2026-12-06T09:00:00+00:00"

    items = post(
        secret,
        "contents",
        [
            {"external_id": "slides-1", "title": "Slides", "kind": "slides", "room": "talk-1", "topics": ["rust"]},
            {"external_id": "video-1", "title": "Video", "room": "gone"},
        ],
    )
    assert statuses(items)[0] == ("slides-1", "created", "")
    assert statuses(items)[1][1] == "rejected" and "room: no room with external id 'gone'" in statuses(items)[1][2]
    slides = Content.objects.get(event=event, external_id="slides-1")
    assert (slides.kind, slides.room.external_id) == ("slides", "talk-1")
    detached = post(secret, "contents", [{"external_id": "slides-1", "room": None}])
    assert statuses(detached) == [("slides-1", "updated", "")]
    slides.refresh_from_db()
    assert slides.room is None and slides.title == "Slides"


def test_envelope_limits_and_tenancy(world):
    _event, secret = world
    too_many = [{"external_id": f"p{i}", "display_name": "P"} for i in range(MAX_BATCH + 1)]
    response = post(secret, "attendees", too_many)
    assert response.status_code == 413
    assert response.json() == {
        "attendees": [BATCH_TOO_LARGE.format(limit=MAX_BATCH, envelope="attendees", count=MAX_BATCH + 1)]
    }
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {secret}", "content_type": "application/json"}
    assert client.post("/api/v1/events/summit/rooms/", {"rooms": "x"}, **headers).json() == {
        "rooms": [BATCH_NOT_LIST.format(envelope="rooms")]
    }
    assert client.post("/api/v1/events/summit/rooms/", {}, **headers).json() == {"rooms": [BATCH_REQUIRED]}
    # Another organization's key sees no such event, and writes nothing.
    other = EventFactory(slug="expo")
    _, other_secret = api_key_create(organization=other.organization, name="theirs")
    assert post(other_secret, "attendees", [{"external_id": "x", "display_name": "X"}]).status_code == 404
    assert post(secret, "attendees", [{"external_id": "x", "display_name": "X"}], slug="expo").status_code == 404
    assert not Attendee.objects.filter(external_id="x").exists()
    assert Client().post(
        "/api/v1/events/summit/attendees/", {"attendees": []}, content_type="application/json"
    ).status_code in (401, 403)


def test_a_full_batch_costs_a_bounded_number_of_queries(world):
    event, secret = world
    items = [
        {"external_id": f"p{i}", "display_name": f"P {i}", "interests": ["postgres"], "planned_rooms": ["hall"]}
        for i in range(MAX_BATCH)
    ]
    with CaptureQueriesContext(connection) as created:
        assert post(secret, "attendees", items).json()["created"] == MAX_BATCH
    for item in items:
        item["interests"] = ["k8s"]
    with CaptureQueriesContext(connection) as updated:
        assert post(secret, "attendees", items).json()["updated"] == MAX_BATCH
    # Set-based: the same handful whether the batch holds 1 item or 500 (auth, reads, one insert or
    # update per table, the questionnaire rows). Per-item work would be thousands.
    assert len(created) < 40 and len(updated) < 40, (len(created), len(updated))
    assert Attendee.objects.filter(event=event, interests__slug="k8s").count() == MAX_BATCH


def test_declarations_reach_the_next_suggestions_and_the_next_training(world, django_capture_on_commit_callbacks):
    event, secret = world
    ada = AttendeeFactory(event=event, external_id="ada")
    post(secret, "attendees", [{"external_id": "bob", "display_name": "Bob", "offers": ["postgres"]}])
    assert not any("Postgres" in r["text"] for item in recommendations_for(attendee=ada).items for r in item.reasons)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(secret, "attendees", [{"external_id": "ada", "seeks": ["postgres"]}])
    assert statuses(response) == [("ada", "updated", "")]
    [first, *_] = recommendations_for(attendee=ada).items
    assert first.external_id == "bob" and "Postgres" in first.reasons[0]["text"]
    rows = Interaction.objects.filter(attendee=ada, source=InteractionSource.QUESTIONNAIRE)
    assert list(rows.values_list("interest__slug", flat=True)) == ["postgres"]
    # A consent withdrawn through the platform takes Bob out of Ada's list at once.
    with django_capture_on_commit_callbacks(execute=True):
        post(secret, "attendees", [{"external_id": "bob", "consent_be_recommended": False}])
    assert "bob" not in [item.external_id for item in recommendations_for(attendee=ada).items]


@pytest.mark.django_db(transaction=True)
def test_two_batches_creating_the_same_attendees_at_once_make_one_row_each():
    event = EventFactory(slug="race")
    _, secret = api_key_create(organization=event.organization, name="platform")
    items = [{"external_id": f"p{i}", "display_name": f"P {i}"} for i in range(50)]
    barrier = threading.Barrier(2)
    answers = []

    def send():
        barrier.wait()
        try:
            answers.append(post(secret, "attendees", items, slug="race"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert Attendee.objects.filter(event=event).count() == 50
    kinds = sorted((a.json()["created"], a.json()["unchanged"]) for a in answers)
    # One batch created them; the other found them (after its retry, or because it came second).
    assert kinds == [(0, 50), (50, 0)], kinds


def test_a_platform_sets_the_language_of_an_attendees_mails(world):
    event, secret = world
    got = statuses(
        post(
            secret,
            "attendees",
            [
                {"external_id": "ada", "display_name": "Ada", "language": "fr"},
                {"external_id": "bob", "display_name": "Bob", "language": "de"},
            ],
        )
    )
    assert got[0] == ("ada", "created", "")
    assert got[1][:2] == ("bob", "rejected") and got[1][2].startswith("language: ")
    assert Attendee.objects.get(event=event, external_id="ada").language == "fr"
    assert statuses(post(secret, "attendees", [{"external_id": "ada", "language": ""}])) == [("ada", "updated", "")]
    assert Attendee.objects.get(event=event, external_id="ada").language == ""
