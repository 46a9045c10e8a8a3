import zoneinfo
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from events.services import api_key_create, api_key_revoke
from tests.factories import EventFactory, InteractionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer(client):
    from django.core.management import call_command

    event = EventFactory()
    user = UserFactory(username="orga")
    call_command(
        "create_organizer",
        organization=event.organization.slug,
        username="orga",
        password="pw-orga-123456",
        verbosity=0,
    )
    user.refresh_from_db()
    client.force_login(user)
    return event


def test_admin_event_list_scoped_to_organizer(client, organizer):
    other = EventFactory(name="Someone else's summit")
    response = client.get(reverse("admin:events_event_changelist"))
    assert response.status_code == 200
    assert organizer.name in response.content.decode()
    assert other.name not in response.content.decode()
    assert client.get(reverse("admin:events_event_change", args=[other.pk])).status_code == 302  # not found


def test_admin_interactions_are_read_only(client, organizer):
    interaction = InteractionFactory(attendee__event=organizer)
    response = client.get(reverse("admin:events_interaction_change", args=[interaction.pk]))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    assert client.get(reverse("admin:events_interaction_add")).status_code == 403


def test_api_events_list_scoped_to_key_organization(client):
    mine = EventFactory()
    EventFactory()
    _, secret = api_key_create(organization=mine.organization, name="platform")
    response = client.get("/api/v1/events/", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert response.status_code == 200
    assert [e["slug"] for e in response.json()["results"]] == [mine.slug]


def test_api_event_of_other_organization_is_404(client):
    mine = EventFactory()
    other = EventFactory()
    _, secret = api_key_create(organization=mine.organization, name="platform")
    response = client.get(f"/api/v1/events/{other.slug}/", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert response.status_code == 404


def test_api_revoked_key_is_401(client):
    event = EventFactory()
    key, secret = api_key_create(organization=event.organization, name="platform")
    api_key_revoke(api_key=key)
    response = client.get("/api/v1/events/", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key."}


def test_api_key_revoked_after_use_is_refused_at_once(client, django_assert_num_queries):
    event = EventFactory()
    key, secret = api_key_create(organization=event.organization, name="platform")
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}
    assert client.get("/api/v1/events/", **auth).status_code == 200
    with django_assert_num_queries(2):  # the key comes from the cache: the page and its count only
        assert client.get("/api/v1/events/", **auth).status_code == 200
    api_key_revoke(api_key=key)
    response = client.get("/api/v1/events/", **auth)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid or revoked API key."})


def test_api_key_deleted_after_use_is_refused_at_once(client):
    event = EventFactory()
    key, secret = api_key_create(organization=event.organization, name="platform")
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}
    assert client.get("/api/v1/events/", **auth).status_code == 200
    key.delete()
    assert client.get("/api/v1/events/", **auth).status_code == 401


def test_api_key_wrong_secret_with_a_valid_prefix_is_refused(client):
    event = EventFactory()
    _, secret = api_key_create(organization=event.organization, name="platform")
    assert client.get("/api/v1/events/", HTTP_AUTHORIZATION=f"Api-Key {secret}").status_code == 200
    response = client.get("/api/v1/events/", HTTP_AUTHORIZATION=f"Api-Key {secret[:-2]}xx")
    assert response.status_code == 401


def test_healthz_reports_database_ok(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def _change_form_data(client, event) -> dict:
    """What the change form submits as it stands (every field's current value)."""
    form = client.get(reverse("admin:events_event_change", args=[event.pk])).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        if hasattr(value, "pk"):
            value = value.pk
        if name.endswith(("_at",)) and value:
            local = value.astimezone(zoneinfo.ZoneInfo(event.timezone))  # the form's zone
            data[f"{name}_0"], data[f"{name}_1"] = local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")
            continue
        data[name] = value
    return data


def test_event_weights_and_dwell_are_one_validated_number_each(client, organizer):
    """Before, the admin showed two raw JSON text boxes: a typo was a broken setting."""
    event = organizer
    page = client.get(reverse("admin:events_event_change", args=[event.pk])).content.decode()
    assert 'name="weight_chat"' in page and 'name="dwell_join_room"' in page
    assert 'name="interaction_weights"' not in page and 'name="dwell_thresholds"' not in page
    data = _change_form_data(client, event)
    assert (data["weight_chat"], data["dwell_join_room"]) == (1.5, 60)

    bad = data | {"weight_chat": "-1", "dwell_join_room": "lots"}
    response = client.post(reverse("admin:events_event_change", args=[event.pk]), bad)
    errors = response.context["adminform"].form.errors
    assert errors["weight_chat"] == ["Ensure this value is greater than or equal to 0.0."]
    assert errors["dwell_join_room"] == ["Enter a whole number."]
    event.refresh_from_db()
    assert event.interaction_weights["chat"] == 1.5  # nothing accepted from a refused form

    good = data | {"weight_chat": "3", "dwell_join_room": "120"}
    response = client.post(reverse("admin:events_event_change", args=[event.pk]), good)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event.refresh_from_db()
    assert (event.interaction_weight("chat"), event.dwell_threshold("join_room")) == (3.0, 120.0)
    assert event.interaction_weight("question") == 2.0  # the others kept


def test_the_event_form_shows_and_takes_its_windows_in_the_events_zone_labelled(client, organizer):
    event = organizer
    event.timezone = "Europe/Paris"
    event.live_starts_at = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    event.live_ends_at = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)
    event.on_demand_ends_at = datetime(2026, 12, 20, tzinfo=UTC)
    event.save()
    page = client.get(reverse("admin:events_event_change", args=[event.pk])).content.decode()
    assert 'name="live_starts_at_1" value="09:00:00"' in page
    assert "In the event's time zone: Europe/Paris." in page
    data = _change_form_data(client, event) | {"live_starts_at_1": "10:00:00"}
    response = client.post(reverse("admin:events_event_change", args=[event.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event.refresh_from_db()
    assert event.live_starts_at == datetime(2026, 12, 10, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    assert event.live_ends_at == datetime(2026, 12, 10, 17, 0, tzinfo=UTC)  # untouched
