"""The organizer's admin. Every list is scoped to the events of the organizer's organizations;
rows that are facts (interactions) are read-only."""

import zoneinfo

from django.contrib import admin
from django.db import models
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from .forms import DWELL_FIELDS, WEIGHT_FIELDS, EventAdminForm
from .models import (
    ApiKey,
    Attendee,
    Block,
    Connection,
    Content,
    Event,
    Interaction,
    InterestTag,
    Meeting,
    MeetingPlace,
    MeetingWindow,
    NotRelevant,
    Organization,
    Room,
    RoomVisit,
    WebhookDelivery,
    WebhookEndpoint,
)
from .selectors import events_for_user, organizations_for_user, tenant_choices
from .webhooks import webhook_retry


def scoped_list_filter(list_filter):
    """A plain relation filter lists every row of the related table, other organizations' too;
    the related-only filter lists only what the (already scoped) changelist refers to."""
    return [
        (name, admin.RelatedOnlyFieldListFilter) if name in ("event", "organization") else name for name in list_filter
    ]


class TenantFormsMixin:
    """Every foreign-key and many-to-many choice in this admin's forms (and the raw-id and
    autocomplete fields, which validate against the same queryset) offers only rows of the user's
    organizations: an organizer can neither see another organization's rows in a form nor submit
    one by its id. The rule for what belongs to whom is `events.selectors.tenant_choices`."""

    def _scope(self, db_field, request, kwargs):
        if "queryset" in kwargs:
            return
        scoped = tenant_choices(model=db_field.related_model, user=request.user)
        if scoped is not None:
            kwargs["queryset"] = scoped

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"  # an address typed without a scheme is https://
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        self._scope(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        self._scope(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class EventScopedAdmin(TenantFormsMixin, admin.ModelAdmin):
    """Shows only rows of events the user organizes, and offers only those events, and rows of
    those events, in filters and forms."""

    event_field = "event"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.event_field}__in": events_for_user(user=request.user)})

    def get_list_filter(self, request):
        return scoped_list_filter(super().get_list_filter(request))


@admin.register(Organization)
class OrganizationAdmin(TenantFormsMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["organizers"]

    def get_queryset(self, request):
        return organizations_for_user(user=request.user)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantFormsMixin, admin.ModelAdmin):
    list_display = ["name", "organization", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = scoped_list_filter(["organization"])
    # A key belongs to its organization for life: moving it would hand that organization's events
    # to whoever holds the secret.
    readonly_fields = ["organization", "prefix", "hashed_key", "created_at", "last_used_at"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(organization__in=organizations_for_user(user=request.user))

    def has_add_permission(self, request):
        # Keys are created with `manage.py create_api_key` so that the secret is shown exactly once.
        return False


@admin.register(Event)
class EventAdmin(TenantFormsMixin, admin.ModelAdmin):
    form = EventAdminForm
    # Fits a 1280 px screen beside the filters (seven columns pushed the dashboard link out of the
    # table's view): the live window is one column, in the event's own zone, labelled.
    list_display = ["name", "organization", "phase", "backend", "live_window"]
    list_filter = ["phase", "backend", "organization"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["phase", "phase_changed_at", "created_at"]
    fieldsets = [
        (None, {"fields": ["organization", "name", "slug", "timezone"]}),
        ("Windows", {"fields": ["live_starts_at", "live_ends_at", "on_demand_ends_at"]}),
        (
            "Matchmaking",
            {
                "fields": [
                    "backend",
                    "engine_preset",
                    "qualifying_threshold",
                    "min_active_contexts",
                    "exposure_cap_share",
                    "rules_cache_seconds",
                    "model_cache_seconds",
                ]
            },
        ),
        ("Qualifying dwell", {"fields": list(DWELL_FIELDS)}),
        ("Interaction weights", {"fields": list(WEIGHT_FIELDS), "classes": ["collapse"]}),
        ("Privacy", {"fields": ["retention_days"]}),
        ("State", {"fields": ["phase", "phase_changed_at", "created_at"]}),
    ]

    def get_queryset(self, request):
        return events_for_user(user=request.user)

    # One time zone rule: the event's windows are shown and entered in the event's own zone, and
    # say so (before, the form showed UTC with no label for an event in Europe/Paris).
    WINDOW_FIELDS = ("live_starts_at", "live_ends_at", "on_demand_ends_at")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        event = self.get_object(request, object_id) if object_id else None
        zone = event.timezone if event is not None else "UTC"
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()  # inside the zone: a template response renders lazily
            return response

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        zone = obj.timezone if obj is not None else "UTC"  # the zone changeform_view renders in
        for name in self.WINDOW_FIELDS:
            if name in form.base_fields:
                field = form.base_fields[name]
                field.help_text = f"In the event's time zone: {zone}. {field.help_text}".strip()
        return form

    @admin.display(description="Live", ordering="live_starts_at")
    def live_window(self, obj: Event) -> str:
        if obj.live_starts_at is None or obj.live_ends_at is None:
            return "not set"
        zone = zoneinfo.ZoneInfo(obj.timezone)
        start, end = obj.live_starts_at.astimezone(zone), obj.live_ends_at.astimezone(zone)
        last = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%d %b %H:%M")
        return f"{start:%d %b %Y %H:%M} \u2013 {last} {start:%Z}"


@admin.register(InterestTag)
class InterestTagAdmin(EventScopedAdmin):
    list_display = ["label", "slug", "event"]
    list_filter = ["event"]
    search_fields = ["label", "slug"]


@admin.register(Room)
class RoomAdmin(EventScopedAdmin):
    list_display = ["name", "external_id", "event", "track", "starts_at", "ends_at"]
    list_filter = ["event", "track"]
    search_fields = ["name", "external_id"]
    filter_horizontal = ["topics"]


@admin.register(Content)
class ContentAdmin(EventScopedAdmin):
    list_display = ["title", "external_id", "event", "kind", "room"]
    list_filter = ["event", "kind"]
    search_fields = ["title", "external_id"]
    list_select_related = ["room"]
    filter_horizontal = ["topics"]


@admin.register(Attendee)
class AttendeeAdmin(EventScopedAdmin):
    list_display = [
        "display_name",
        "external_id",
        "event",
        "company",
        "role",
        "group",
        "consent_be_recommended",
        "consent_receive_recommendations",
        "consent_training",
    ]
    list_filter = [
        "event",
        "group",
        "consent_be_recommended",
        "consent_receive_recommendations",
        "consent_training",
    ]
    search_fields = ["display_name", "external_id", "company", "headline"]
    list_select_related = ["event"]
    filter_horizontal = ["interests", "offers", "seeks", "planned_rooms"]
    raw_id_fields = ["user"]


@admin.register(Interaction)
class InteractionAdmin(EventScopedAdmin):
    list_display = ["occurred_at", "attendee", "type", "room", "content", "interest", "value", "qualifies", "source"]
    list_filter = ["event", "type", "source", "qualifies"]
    search_fields = ["attendee__display_name", "attendee__external_id", "client_event_id"]
    list_select_related = ["attendee", "room", "content", "interest"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is not worth it

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RoomVisit)
class RoomVisitAdmin(EventScopedAdmin):
    """Presence as the server paired it: read-only, written by events.presence."""

    list_display = ["joined_at", "left_at", "attendee", "room", "close_reason", "expects_heartbeats", "interaction"]
    list_filter = ["event", "close_reason", "expects_heartbeats"]
    search_fields = ["attendee__display_name", "attendee__external_id", "room__external_id"]
    list_select_related = ["attendee", "room", "interaction"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Connection)
class ConnectionAdmin(EventScopedAdmin):
    list_display = ["requester", "recipient", "status", "event", "created_at", "responded_at"]
    list_filter = ["event", "status"]
    search_fields = ["requester__display_name", "recipient__display_name"]
    list_select_related = ["requester", "recipient", "event"]
    raw_id_fields = ["requester", "recipient"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Block)
class BlockAdmin(EventScopedAdmin):
    list_display = ["blocker", "blocked", "event", "created_at"]
    list_filter = ["event"]
    list_select_related = ["blocker", "blocked", "event"]
    raw_id_fields = ["blocker", "blocked"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(NotRelevant)
class NotRelevantAdmin(EventScopedAdmin):
    list_display = ["attendee", "target", "event", "created_at"]
    list_filter = ["event"]
    list_select_related = ["attendee", "target", "event"]
    raw_id_fields = ["attendee", "target"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MeetingWindow)
class MeetingWindowAdmin(EventScopedAdmin):
    """The event's meeting hours: 1:1 meetings are booked in slots of the event's meeting length
    laid from each window's start."""

    list_display = ["event", "starts_at", "ends_at"]
    list_filter = ["event"]


@admin.register(MeetingPlace)
class MeetingPlaceAdmin(EventScopedAdmin):
    """The pool of places a booked meeting gets one of: a table's name, or a virtual table's link."""

    list_display = ["name", "url", "event"]
    list_filter = ["event"]
    search_fields = ["name"]


@admin.register(Meeting)
class MeetingAdmin(EventScopedAdmin):
    list_display = ["requester", "recipient", "status", "starts_at", "place", "event", "created_at"]
    list_filter = ["event", "status"]
    search_fields = ["requester__display_name", "recipient__display_name"]
    list_select_related = ["requester", "recipient", "place", "event"]
    raw_id_fields = ["requester", "recipient", "proposed_by"]

    def has_add_permission(self, request):
        return False  # attendees book meetings; the admin watches them

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantFormsMixin, admin.ModelAdmin):
    """Where each organization's platform hears what happened (`events.webhooks`). The secret is
    shown so that it can be given to the platform, which checks every delivery's signature."""

    list_display = ["url", "organization", "active", "kinds", "failing_until", "created_at"]
    list_filter = scoped_list_filter(["organization", "active"])
    readonly_fields = ["secret", "failing_until", "created_at"]
    fields = ["organization", "url", "kinds", "active", "secret", "failing_until", "created_at"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(organization__in=organizations_for_user(user=request.user))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(EventScopedAdmin):
    """Every message to every endpoint, with how its delivery went; read-only, but one that gave up
    (or is still waiting) can be sent again from the list."""

    list_display = [
        "kind",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["event", "status", "kind"]
    search_fields = ["message_id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Send again now (attempts start over)")
    def retry_now(self, request, queryset):
        count = webhook_retry(deliveries=queryset)
        self.message_user(request, f"{count} deliveries will be sent within the sweeper's interval.")


admin.site.site_header = "Matchmaking administration"
admin.site.site_title = "Matchmaking"
admin.site.index_title = "Run your events"


# Periodic tasks (django-celery-beat): the raw rows take any registered task with any arguments,
# so a task could be pointed at another organization's event. They are for superusers only;
# organizers edit their own events' schedules on the event's "Schedules" page
# (dashboard.admin, recommendations.jobs.schedules), which writes nothing but a frequency.
class SuperuserOnlyMixin:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_add_permission = has_module_permission

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_delete_permission = has_change_permission


BEAT_MODELS = [PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule]
for _model in BEAT_MODELS:
    _base = type(admin.site._registry[_model])
    admin.site.unregister(_model)
    admin.site.register(_model, type(f"SuperuserOnly{_base.__name__}", (SuperuserOnlyMixin, _base), {}))
