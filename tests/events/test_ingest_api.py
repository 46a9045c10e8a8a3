"""REST batch ingestion: statuses per item, every rejection reason, limits, tenancy, idempotency."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from events import ingestion
from events.api.views import BATCH_NOT_LIST, BATCH_REQUIRED, BATCH_TOO_LARGE
from events.enums import InteractionSource
from events.models import Interaction
from events.services import NEGATIVE_VALUE, api_key_create
from tests.factories import LIVE_START, AttendeeFactory, ContentFactory, EventFactory, InterestTagFactory, RoomFactory

pytestmark = pytest.mark.django_db

AT = LIVE_START + timedelta(minutes=10)


@pytest.fixture
def world():
    event = EventFactory(slug="summit")
    _, secret = api_key_create(organization=event.organization, name="platform")
    AttendeeFactory(event=event, external_id="ada")
    RoomFactory(event=event, external_id="keynote")
    ContentFactory(event=event, external_id="talk-1")
    InterestTagFactory(event=event, slug="mlops")
    return event, secret


def item(n=1, **overrides):
    data = {
        "client_event_id": f"ce-{n}",
        "attendee_id": "ada",
        "context_kind": "content",
        "context_id": "talk-1",
        "type": "view_content",
        "value": 45,
        "occurred_at": AT.isoformat(),
    }
    data.update(overrides)
    return data


def post(client, secret, items, slug="summit"):
    return client.post(
        f"/api/v1/events/{slug}/interactions/",
        {"interactions": items},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )


def test_ingest_accepts_valid_items_of_every_context_kind(client, world):
    _event, secret = world
    response = post(
        client,
        secret,
        [
            item(1),
            item(2, context_kind="room", context_id="keynote", type="join_room", value=120),
            item(3, context_kind="interest", context_id="mlops", type="chat", value=None),
        ],
    )
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "duplicate": 0,
        "rejected": 0,
        "results": [
            {"index": 0, "client_event_id": "ce-1", "status": "accepted"},
            {"index": 1, "client_event_id": "ce-2", "status": "accepted"},
            {"index": 2, "client_event_id": "ce-3", "status": "accepted"},
        ],
    }
    rows = list(
        Interaction.objects.order_by("client_event_id").values_list(
            "client_event_id",
            "type",
            "value",
            "qualifies",
            "source",
            "room__external_id",
            "content__external_id",
            "interest__slug",
        )
    )
    assert rows == [
        ("ce-1", "view_content", 45.0, True, InteractionSource.LIVE, None, "talk-1", None),
        ("ce-2", "join_room", 120.0, True, InteractionSource.LIVE, "keynote", None, None),
        ("ce-3", "chat", None, True, InteractionSource.LIVE, None, None, "mlops"),
    ]


def test_ingest_short_view_is_kept_but_does_not_qualify(client, world):
    _, secret = world
    assert post(client, secret, [item(1, value=29)]).json()["accepted"] == 1
    assert Interaction.objects.get().qualifies is False


def test_ingest_resubmission_is_duplicate_without_second_row(client, world):
    _, secret = world
    post(client, secret, [item(1), item(2)])
    response = post(client, secret, [item(2), item(3)])
    assert [r["status"] for r in response.json()["results"]] == ["duplicate", "accepted"]
    assert response.json()["results"][0]["reason"] == ingestion.ALREADY_RECORDED
    assert Interaction.objects.count() == 3


def test_ingest_repeat_within_batch_is_duplicate(client, world):
    _, secret = world
    response = post(client, secret, [item(1), item(1)])
    assert response.json()["results"][1] == {
        "index": 1,
        "client_event_id": "ce-1",
        "status": "duplicate",
        "reason": ingestion.REPEATED_IN_BATCH.format(index=0),
    }
    assert Interaction.objects.count() == 1


SKEW = int(ingestion.CLOCK_SKEW.total_seconds())


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"attendee_id": "nobody"}, ingestion.UNKNOWN_ATTENDEE.format(id="nobody", event="summit")),
        ({"context_id": "nothing"}, ingestion.UNKNOWN_CONTEXT.format(kind="content", id="nothing", event="summit")),
        (
            {"context_kind": "room", "context_id": "nowhere", "type": "join_room"},
            ingestion.UNKNOWN_CONTEXT.format(kind="room", id="nowhere", event="summit"),
        ),
        (
            {"context_kind": "interest", "context_id": "knitting"},
            ingestion.UNKNOWN_CONTEXT.format(kind="interest", id="knitting", event="summit"),
        ),
        ({"value": -1}, NEGATIVE_VALUE),
        ({"value": "12"}, ingestion.NOT_A_NUMBER),
        ({"value": True}, ingestion.NOT_A_NUMBER),
        ({"type": "dance"}, ingestion.UNKNOWN_TYPE.format(value="'dance'")),
        ({"type": 3}, ingestion.UNKNOWN_TYPE.format(value="3")),
        ({"context_kind": "booth"}, ingestion.UNKNOWN_CONTEXT_KIND.format(value="'booth'")),
        ({"type": "join_room"}, ingestion.ROOM_TYPE_NEEDS_ROOM.format(type="join_room", kind="content")),
        ({"occurred_at": "yesterday"}, ingestion.NOT_A_TIMESTAMP),
        ({"occurred_at": "2026-06-04T09:10:00"}, ingestion.NOT_A_TIMESTAMP),
        ({"occurred_at": None}, ingestion.NOT_A_TIMESTAMP),
        ({"client_event_id": ""}, ingestion.NOT_AN_ID.format(field="client_event_id")),
        ({"client_event_id": "x" * 129}, ingestion.NOT_AN_ID.format(field="client_event_id")),
        # PostgreSQL text cannot hold NUL: refused per item, the neighbours still land
        ({"client_event_id": "ce-\x00-2"}, ingestion.NUL_IN_TEXT.format(field="client_event_id")),
        ({"attendee_id": "ada\x00"}, ingestion.NUL_IN_TEXT.format(field="attendee_id")),
        ({"context_id": "\x00"}, ingestion.NUL_IN_TEXT.format(field="context_id")),
        # a long bad value is quoted, not echoed back whole
        ({"type": "d" * 100_000}, ingestion.UNKNOWN_TYPE.format(value="'" + "d" * 96 + "...")),
        ({"attendee_id": ["ada"]}, ingestion.NOT_AN_ID.format(field="attendee_id")),
        ({"context_id": None}, ingestion.REQUIRED.format(field="context_id")),
        ({"type": None}, ingestion.REQUIRED.format(field="type")),
        (
            {"occurred_at": (LIVE_START - timedelta(seconds=SKEW + 1)).isoformat()},
            ingestion.OUTSIDE_WINDOW.format(
                at=(LIVE_START - timedelta(seconds=SKEW + 1)).isoformat(),
                start=LIVE_START.isoformat(),
                end=(LIVE_START + timedelta(days=30)).isoformat(),
                skew=SKEW,
            ),
        ),
    ],
)
def test_ingest_rejects_bad_item_and_keeps_neighbours(client, world, overrides, reason):
    _, secret = world
    bad = item(2, **overrides)
    response = post(client, secret, [item(1), bad, item(3)])
    body = response.json()
    assert response.status_code == 200
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert body["results"][1]["reason"] == reason
    assert sorted(Interaction.objects.values_list("client_event_id", flat=True)) == ["ce-1", "ce-3"]


def test_ingest_rejects_missing_occurred_at(client, world):
    _, secret = world
    bad = item(1)
    del bad["occurred_at"]
    assert post(client, secret, [bad]).json()["results"][0]["reason"] == ingestion.REQUIRED.format(field="occurred_at")


def test_ingest_rejects_non_object_item(client, world):
    _, secret = world
    result = post(client, secret, ["ce-1"]).json()["results"][0]
    assert result == {"index": 0, "client_event_id": None, "status": "rejected", "reason": ingestion.NOT_AN_OBJECT}


def test_ingest_skew_tolerates_early_clock_within_skew(client, world):
    _, secret = world
    at = LIVE_START - timedelta(seconds=SKEW - 1)
    assert post(client, secret, [item(1, occurred_at=at.isoformat())]).json()["accepted"] == 1


def test_ingest_accepts_epoch_seconds(client, world):
    _, secret = world
    assert post(client, secret, [item(1, occurred_at=AT.timestamp())]).json()["accepted"] == 1
    assert Interaction.objects.get().occurred_at == AT


def test_ingest_rejects_future_timestamp(client, world):
    event, secret = world
    event.live_starts_at = event.live_ends_at = event.on_demand_ends_at = None
    event.save()
    from django.utils import timezone

    future = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    reason = post(client, secret, [item(1, occurred_at=future.isoformat())]).json()["results"][0]["reason"]
    assert reason == ingestion.IN_FUTURE.format(at=future.isoformat(), skew=SKEW)


def test_ingest_rejects_attendee_of_other_event_of_same_organization(client, world):
    event, secret = world
    sibling = EventFactory(organization=event.organization)
    AttendeeFactory(event=sibling, external_id="grace")
    reason = post(client, secret, [item(1, attendee_id="grace")]).json()["results"][0]["reason"]
    assert reason == ingestion.ATTENDEE_OF_OTHER_EVENT.format(id="grace", event="summit")


def test_ingest_attendee_of_other_organization_is_just_unknown(client, world):
    _, secret = world
    AttendeeFactory(external_id="mallory")  # another organization's event
    reason = post(client, secret, [item(1, attendee_id="mallory")]).json()["results"][0]["reason"]
    assert reason == ingestion.UNKNOWN_ATTENDEE.format(id="mallory", event="summit")


def test_ingest_other_organization_key_gets_404(client, world):
    other = EventFactory()
    _, other_secret = api_key_create(organization=other.organization, name="intruder")
    response = post(client, other_secret, [item(1)])
    assert response.status_code == 404
    assert Interaction.objects.count() == 0


def test_ingest_without_key_is_401_or_403(client, world):
    response = client.post("/api/v1/events/summit/interactions/", {"interactions": [item(1)]}, "application/json")
    assert response.status_code in (401, 403)
    assert Interaction.objects.count() == 0


def test_ingest_more_than_limit_is_413(client, world):
    _, secret = world
    response = post(client, secret, [item(n) for n in range(ingestion.MAX_BATCH + 1)])
    assert response.status_code == 413
    assert response.json() == {
        "interactions": [
            BATCH_TOO_LARGE.format(limit=ingestion.MAX_BATCH, envelope="interactions", count=ingestion.MAX_BATCH + 1)
        ]
    }
    assert Interaction.objects.count() == 0


def test_ingest_exactly_limit_is_accepted(client, world):
    _, secret = world
    response = post(client, secret, [item(n) for n in range(ingestion.MAX_BATCH)])
    assert response.json()["accepted"] == ingestion.MAX_BATCH


def test_ingest_unreadable_envelope_is_400(client, world):
    _, secret = world
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {secret}", "content_type": "application/json"}
    url = "/api/v1/events/summit/interactions/"
    assert client.post(url, "{not json", **headers).status_code == 400
    response = client.post(url, {"items": []}, **headers)
    assert (response.status_code, response.json()) == (400, {"interactions": [BATCH_REQUIRED]})
    response = client.post(url, {"interactions": {"a": 1}}, **headers)
    assert (response.status_code, response.json()) == (
        400,
        {"interactions": [BATCH_NOT_LIST.format(envelope="interactions")]},
    )


def test_ingest_limit_is_documented_in_openapi_schema(client, world):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "interactions_batch_create" in schema
    assert f"Up to {ingestion.MAX_BATCH} interactions per request" in schema
    assert '"413"' in schema or "'413'" in schema or "413:" in schema


def test_ingest_query_count_does_not_grow_with_batch(client, world):
    _, secret = world
    post(client, secret, [item(0)])  # the first request also stamps the key's last use
    counts = []
    sizes = ((10, 1), (20, 3), (100, 300))
    if connection.vendor == "sqlite":
        # SQLite caps a statement's parameters, so Django splits an insert of 300 rows there.
        sizes = sizes[:2]
    for start, size in sizes:
        with CaptureQueriesContext(connection) as queries:
            assert post(client, secret, [item(n) for n in range(start, start + size)]).json()["accepted"] == size
        counts.append(len(queries))
    # The insert itself goes through a raw psycopg cursor, which Django does not count: +1 each.
    assert counts == [counts[0]] * len(sizes)
    assert counts[0] <= 8


@pytest.mark.django_db(transaction=True)
def test_ingest_concurrent_duplicate_submissions_yield_one_row():
    event = EventFactory(slug="summit")
    _, secret = api_key_create(organization=event.organization, name="platform")
    AttendeeFactory(event=event, external_id="ada")
    ContentFactory(event=event, external_id="talk-1")
    items = [item(n) for n in range(200)]
    barrier = threading.Barrier(4)
    bodies = []

    def submit(batch):
        try:
            barrier.wait()
            bodies.append(post(Client(), secret, batch).json())
        finally:
            connection.close()

    # Half the requests send the ids in reverse order: the server must not deadlock on them.
    threads = [threading.Thread(target=submit, args=(items if n % 2 else items[::-1],)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Interaction.objects.count() == 200
    assert sum(b["accepted"] for b in bodies) == 200
    assert sum(b["duplicate"] for b in bodies) == 600
