"""Tenancy of the admin, as properties over every registered ModelAdmin:

- every foreign-key and many-to-many choice of every admin form (add and change) holds nothing
  that belongs only to another organization;
- every admin action, posted with another organization's row selected, changes nothing of it;
- the raw django-celery-beat rows (any task, any arguments) are for superusers only; organizers
  change their own events' schedules on the event's Schedules page, and only their frequency.

What belongs to whom is worked out here from the rows themselves (`owners`), not with the
product's `tenant_choices`, so that a wrong rule there cannot make these tests agree with it."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.forms import ModelChoiceField
from django.test import RequestFactory
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from events import services
from events.admin import BEAT_MODELS
from events.models import Event, Organization
from recommendations.jobs.schedules import event_schedules_get
from recommendations.models import TrainingRun
from tests.dashboard.factories import organizer, tenant_rows
from tests.factories import AttendeeFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda kv: kv[0]._meta.label)
WITH_ACTIONS = [(model, ma) for model, ma in REGISTERED if ma.actions is not None]


def owners(obj) -> set[int] | None:
    """Organizations a row belongs to; None for rows of no organization (schedules, groups)."""
    if isinstance(obj, Organization):
        return {obj.pk}
    if isinstance(obj, Event):
        return {obj.organization_id}
    if isinstance(obj, get_user_model()):
        return set(obj.organizations.values_list("pk", flat=True)) | set(
            obj.attendances.values_list("event__organization_id", flat=True)
        )
    if getattr(obj, "event_id", None) is not None:
        return {Event.objects.get(pk=obj.event_id).organization_id}
    if getattr(obj, "organization_id", None) is not None:
        return {obj.organization_id}
    return None


@pytest.fixture
def world():
    mine = EventFactory(name="Mine summit", slug="mine-summit")
    theirs = EventFactory(name="Theirs summit", slug="theirs-summit")
    tenant_rows(mine, "Mine")
    tenant_rows(theirs, "Theirs")
    user = organizer(mine.organization)
    colleague = organizer(mine.organization)
    stranger = organizer(theirs.organization)  # another organization's organizer
    AttendeeFactory(event=theirs, user=UserFactory())  # another organization's attendee login
    UserFactory(is_staff=True, is_superuser=True)  # in no organization
    return {"mine": mine, "theirs": theirs, "user": user, "colleague": colleague, "stranger": stranger}


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _choice_fields(model_admin, request, obj):
    form = model_admin.get_form(request, obj, change=obj is not None)
    return [(name, field) for name, field in form.base_fields.items() if isinstance(field, ModelChoiceField)]


def test_every_form_choice_of_every_admin_is_of_the_users_organizations(world):
    user = world["user"]
    request = _request(user)
    mine = {world["mine"].organization_id}
    leaks, checked = [], set()
    for model, model_admin in REGISTERED:
        own_row = model_admin.get_queryset(request).first()
        for obj in [None, own_row] if own_row is not None else [None]:
            for name, field in _choice_fields(model_admin, request, obj):
                for choice in field.queryset:
                    belongs = owners(choice)
                    if belongs is None:
                        break  # a model of no organization: nothing to leak
                    checked.add(f"{model._meta.label}.{name}")
                    if not (choice == user or belongs & mine):
                        leaks.append(f"{model._meta.label} {'change' if obj else 'add'} form: {name}={choice!r}")
    assert not leaks
    # Vacuity guard: the check did meet the tenant choices of the forms that have them.
    assert checked >= {
        "events.Organization.organizers",
        "events.Event.organization",
        "events.Attendee.event",
        "events.Attendee.user",
        "events.Room.topics",
        "events.Content.room",
        "recommendations.MatchmakingRule.tag",
        "events.Connection.requester",
    }


def test_the_forms_of_the_admin_do_list_tenant_rows_so_the_property_above_bites(world):
    """The property is only worth something if forms list tenant rows at all: here, the attendee
    form lists the user's own events and tags (and a superuser's lists the others' too)."""
    from events.models import Attendee

    model_admin = admin.site._registry[Attendee]
    fields = dict(_choice_fields(model_admin, _request(world["user"]), None))
    assert set(fields["event"].queryset) == {world["mine"]}
    superuser = get_user_model().objects.filter(is_superuser=True).first()
    fields = dict(_choice_fields(model_admin, _request(superuser), None))
    assert {world["mine"], world["theirs"]} <= set(fields["event"].queryset)


def test_an_organizer_cannot_move_their_api_key_to_another_organization(client, world):
    """The escalation as it was reported: the key's change form listed every organization, and a
    key moved to another organization read that organization's events through the API."""
    key, secret = services.api_key_create(organization=world["mine"].organization, name="platform")
    client.force_login(world["user"])
    url = reverse("admin:events_apikey_change", args=[key.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "Theirs" not in page.content.decode()
    response = client.post(url, {"name": "platform", "organization": world["theirs"].organization_id})
    assert response.status_code in (200, 302)
    key.refresh_from_db()
    assert key.organization_id == world["mine"].organization_id
    api = client.get(
        f"/api/v1/events/{world['theirs'].slug}/",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
        HTTP_ACCEPT="application/json",
    )
    assert api.status_code == 404


def _foreign_row(model, world):
    theirs = {world["theirs"].organization_id}
    for row in model._default_manager.all():
        belongs = owners(row)
        if belongs and belongs <= theirs:
            return row
    return None


def _snapshot(row):
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}


def test_every_admin_action_on_another_organizations_row_changes_nothing(client, world):
    user = world["user"]
    client.force_login(user)
    runs_before = TrainingRun.objects.filter(event=world["theirs"]).count()
    tried = set()
    for model, model_admin in WITH_ACTIONS:
        foreign = _foreign_row(model, world)
        if foreign is None:
            continue  # a model of no organization
        before = _snapshot(foreign)
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in model_admin.get_actions(_request(user)):
            tried.add(f"{model._meta.label}.{action}")
            client.post(url, {"action": action, "_selected_action": [foreign.pk], "index": 0, "post": "yes"})
            where = f"{model._meta.label}: {action}"
            assert model._default_manager.filter(pk=foreign.pk).exists(), f"{where} deleted another organization's row"
            assert _snapshot(model._default_manager.get(pk=foreign.pk)) == before, f"{where} changed it"
            assert TrainingRun.objects.filter(event=world["theirs"]).count() == runs_before, f"{where} started a run"
    assert tried >= {
        "personalize.RemoteResource.retrain",
        "personalize.RemoteResource.teardown",
        "events.Attendee.delete_selected",
        "events.Event.delete_selected",
        "recommendations.MatchmakingRule.delete_selected",
    }


# --- Periodic tasks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", BEAT_MODELS, ids=[m._meta.model_name for m in BEAT_MODELS])
def test_raw_periodic_task_rows_are_for_superusers_only(client, world, model):
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    client.force_login(world["user"])
    assert client.get(reverse(f"{prefix}_changelist")).status_code == 403
    assert client.get(reverse(f"{prefix}_add")).status_code == 403
    assert f"/admin/{model._meta.app_label}/" not in client.get(reverse("admin:index")).content.decode()
    client.force_login(get_user_model().objects.filter(is_superuser=True).first())
    assert client.get(reverse(f"{prefix}_changelist")).status_code == 200


def test_organizer_cannot_add_a_periodic_task_pointed_at_another_event(client, world):
    client.force_login(world["user"])
    before = PeriodicTask.objects.count()
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_add"),
        {
            "name": "mine now",
            "regtask": "recommendations.train_event",
            "kwargs": f'{{"event_id": {world["theirs"].pk}}}',
            "enabled": "on",
        },
    )
    assert response.status_code == 403
    assert PeriodicTask.objects.count() == before


def test_organizer_changes_their_events_schedule_frequency_on_its_schedules_page(client, world):
    event = world["mine"]
    client.force_login(world["user"])
    url = reverse("admin:events_event_dashboard_schedules", args=[event.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "Retrain every" in page.content.decode()
    response = client.post(url, {"train_every_minutes": "30", "batch_hour": "5"})
    assert response.status_code == 302
    current = event_schedules_get(event=event)
    assert (current.train_every_minutes, current.batch_hour) == (30, 5)
    assert current.train.task == "recommendations.train_event"
    assert current.train.kwargs == f'{{"event_id": {event.pk}, "trigger": "schedule"}}'


def test_schedules_page_refuses_bad_values_per_field_and_keeps_the_schedule(client, world):
    event = world["mine"]
    before = event_schedules_get(event=event)
    client.force_login(world["user"])
    url = reverse("admin:events_event_dashboard_schedules", args=[event.pk])
    response = client.post(url, {"train_every_minutes": "0", "batch_hour": "24"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"train_every_minutes", "batch_hour"}
    after = event_schedules_get(event=event)
    assert (after.train_every_minutes, after.batch_hour) == (before.train_every_minutes, before.batch_hour)


def test_another_organizations_schedules_page_is_a_404(client, world):
    client.force_login(world["user"])
    theirs = world["theirs"]
    before = event_schedules_get(event=theirs).train_every_minutes
    url = reverse("admin:events_event_dashboard_schedules", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"train_every_minutes": "7", "batch_hour": "1"}).status_code == 404
    assert event_schedules_get(event=theirs).train_every_minutes == before
