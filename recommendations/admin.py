"""The organizer's view of derived data: model versions, runs, the batch table and the funnel,
each scoped to the events of the organizer's organizations. Rows are written by services and
tasks, so they are read-only here; the schedules themselves are django-celery-beat's
"Periodic tasks", editable in its own admin section."""

from django.contrib import admin

from events.admin import EventScopedAdmin
from recommendations.models import BatchRecommendation, FunnelEvent, MatchmakingRule, ModelVersion, TrainingRun


class ReadOnlyMixin:
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyMixin, EventScopedAdmin):
    list_display = [
        "event",
        "number",
        "backend",
        "status",
        "not_published_reason",
        "n_attendees",
        "n_interactions",
        "training_seconds",
        "created_at",
        "published_at",
    ]
    list_filter = [("event", admin.RelatedOnlyFieldListFilter), "status", "backend"]
    list_select_related = ["event"]


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyMixin, EventScopedAdmin):
    list_display = ["event", "kind", "status", "trigger", "progress", "message", "created_at", "finished_at"]
    list_filter = [("event", admin.RelatedOnlyFieldListFilter), "kind", "status", "trigger"]
    list_select_related = ["event"]


@admin.register(BatchRecommendation)
class BatchRecommendationAdmin(ReadOnlyMixin, EventScopedAdmin):
    list_display = ["attendee", "event", "source", "model_version", "computed_at"]
    list_filter = [("event", admin.RelatedOnlyFieldListFilter), "source"]
    list_select_related = ["attendee", "event", "model_version"]
    raw_id_fields = ["attendee", "model_version"]
    show_full_result_count = False


@admin.register(FunnelEvent)
class FunnelEventAdmin(ReadOnlyMixin, EventScopedAdmin):
    list_display = ["at", "stage", "viewer", "suggested", "source", "model_version", "event"]
    list_filter = [("event", admin.RelatedOnlyFieldListFilter), "stage", "source"]
    list_select_related = ["viewer", "suggested", "model_version", "event"]
    raw_id_fields = ["viewer", "suggested", "model_version"]
    show_full_result_count = False


@admin.register(MatchmakingRule)
class MatchmakingRuleAdmin(EventScopedAdmin):
    list_display = ["event", "kind", "signal", "from_group", "to_group", "tag", "value", "enabled"]
    list_filter = [("event", admin.RelatedOnlyFieldListFilter), "kind", "enabled"]
    list_editable = ["value", "enabled"]
    search_fields = ["event__name", "from_group", "to_group", "tag__label", "note"]
    autocomplete_fields = ["tag"]
