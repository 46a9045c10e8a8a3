import json

import pytest
from rest_framework.throttling import ScopedRateThrottle

from events.api.views import BODY_TOO_LARGE
from events.services import api_key_create
from matchmaking_site.middleware import TOO_MANY_LOGINS
from tests.factories import EventFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]


def test_ingest_rate_limit_gives_429_with_retry_after(client, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"ingest": "3/min"})
    event = EventFactory()
    _, secret = api_key_create(organization=event.organization, name="p")
    url = f"/api/v1/events/{event.slug}/interactions/"
    statuses = [
        client.post(url, {"interactions": []}, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {secret}")
        for _ in range(4)
    ]
    assert [r.status_code for r in statuses] == [400, 400, 400, 429]
    assert 0 < int(statuses[-1]["Retry-After"]) <= 60
    # Another key has its own budget.
    _, other = api_key_create(organization=event.organization, name="q")
    response = client.post(
        url, {"interactions": []}, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {other}"
    )
    assert response.status_code == 400


def test_login_rate_limit_gives_429_with_retry_after(client, settings):
    settings.LOGIN_RATE_LIMIT = 3
    UserFactory(username="orga", is_staff=True)
    codes = [client.post("/admin/login/", {"username": "orga", "password": "wrong"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.post("/admin/login/", {"username": "orga", "password": "wrong"})
    assert response.content.decode() == TOO_MANY_LOGINS.format(seconds=settings.LOGIN_RATE_WINDOW_SECONDS)
    assert response["Retry-After"] == str(settings.LOGIN_RATE_WINDOW_SECONDS)


def test_ingest_body_over_size_limit_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    event = EventFactory()
    _, secret = api_key_create(organization=event.organization, name="p")
    body = json.dumps({"interactions": [{"client_event_id": "x" * 50}] * 40})
    response = client.post(
        f"/api/v1/events/{event.slug}/interactions/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )
    assert response.status_code == 413
    assert response.json() == {"non_field_errors": [BODY_TOO_LARGE.format(limit=1000)]}


def test_pagination_offset_past_bigint_is_an_empty_page(client):
    event = EventFactory()
    _, secret = api_key_create(organization=event.organization, name="p")
    response = client.get("/api/v1/events/", {"offset": 10**20, "limit": 10**9}, HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert response.status_code == 200
    assert response.json()["results"] == []
