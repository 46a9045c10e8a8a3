"""The organizer's admin. Every list is scoped to the events of the organizer's organizations;
rows that are facts (interactions) are read-only."""

from django.contrib import admin
from django.db.models import Q
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from .models import (
    ApiKey,
    Attendee,
    Block,
    Connection,
    Content,
    Event,
    Interaction,
    InterestTag,
    NotRelevant,
    Organization,
    Room,
    RoomVisit,
)
from .selectors import events_for_user, organizations_for_user


def scoped_list_filter(list_filter):
    """A plain relation filter lists every row of the related table, other organizations' too;
    the related-only filter lists only what the (already scoped) changelist refers to."""
    return [
        (name, admin.RelatedOnlyFieldListFilter) if name in ("event", "organization") else name for name in list_filter
    ]


class EventScopedAdmin(admin.ModelAdmin):
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

    def _scoped_choices(self, db_field, request, kwargs):
        related = db_field.related_model
        if related is Event:
            kwargs["queryset"] = events_for_user(user=request.user)
        elif any(f.name == "event" for f in related._meta.get_fields()) and not request.user.is_superuser:
            kwargs["queryset"] = related._default_manager.filter(event__in=events_for_user(user=request.user))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["organizers"]

    def get_queryset(self, request):
        return organizations_for_user(user=request.user)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = scoped_list_filter(["organization"])
    readonly_fields = ["prefix", "hashed_key", "created_at", "last_used_at"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(organization__in=organizations_for_user(user=request.user))

    def has_add_permission(self, request):
        # Keys are created with `manage.py create_api_key` so that the secret is shown exactly once.
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "organization", "phase", "backend", "live_starts_at", "live_ends_at"]
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
                    "dwell_thresholds",
                    "interaction_weights",
                    "exposure_cap_share",
                    "rules_cache_seconds",
                    "model_cache_seconds",
                ]
            },
        ),
        ("Privacy", {"fields": ["retention_days"]}),
        ("State", {"fields": ["phase", "phase_changed_at", "created_at"]}),
    ]

    def get_queryset(self, request):
        return events_for_user(user=request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":
            kwargs["queryset"] = organizations_for_user(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


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


admin.site.site_header = "Matchmaking administration"
admin.site.site_title = "Matchmaking"
admin.site.index_title = "Run your events"


# Periodic tasks (django-celery-beat): organizers edit their events' schedules, and see no other
# event's. A schedule belongs to an event through its `event_id` keyword argument; schedules with
# none (the outbox and presence sweepers) are infrastructure, for superusers only.
admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class EventScopedPeriodicTaskAdmin(PeriodicTaskAdmin):
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        owned = Q(pk__in=[])
        for event_id in events_for_user(user=request.user).values_list("pk", flat=True):
            key = f'"event_id": {event_id}'  # as json.dumps writes it; the next character ends the number
            owned |= Q(kwargs__contains=f"{key},") | Q(kwargs__contains=f"{key}}}")
        return qs.filter(owned)
