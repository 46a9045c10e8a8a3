"""The organizer's dashboard, inside the admin: one page per event, its JSON snapshot, its
buttons and its CSV exports, all under the event's admin URL and behind the admin's login.

`events/` cannot import this app's readers of `recommendations/`, so the event admin is
extended here (re-registered as a subclass) rather than edited there. Every view finds the event
through `EventAdmin.get_queryset`, i.e. `events_for_user`: another organization's event is a 404,
exactly like one that does not exist; a user who may view but not change events gets a 403 on the
buttons.
"""

import csv

from django import forms
from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from events.admin import EventAdmin
from events.models import Event
from recommendations.backends.personalize.schedules import personalize_schedules
from recommendations.jobs import schedules

from . import exports
from .charts import interactions_chart_svg
from .selectors import dashboard_snapshot
from .services import ACTIONS, dashboard_publish, dashboard_seq

# Several organizers watching one busy event share one snapshot per push (and, between pushes, per
# few seconds, so that "active now" and "per minute now" still follow the clock).
SNAPSHOT_KEY = "dashboard:snapshot:{event_id}:{seq}"
SNAPSHOT_CACHE_SECONDS = 3

UNKNOWN_ACTION = "Unknown action {action!r}; expected one of: {known}."
UNKNOWN_EXPORT = "Unknown export {what!r}."


class SchedulesForm(forms.Form):
    train_every_minutes = forms.IntegerField(
        label="Retrain every (minutes)",
        min_value=schedules.TRAIN_EVERY_MINUTES_MIN,
        max_value=schedules.TRAIN_EVERY_MINUTES_MAX,
        help_text="While the event is live. A run with too few new interactions is skipped, so often is cheap.",
    )
    batch_hour = forms.IntegerField(
        label="Daily batch at (hour, event time)",
        min_value=0,
        max_value=23,
        help_text="During the on-demand window.",
    )


admin.site.unregister(Event)


@admin.register(Event)
class EventDashboardAdmin(EventAdmin):
    # The dashboard is what an organizer opens most: next to the name, never pushed out of view.
    list_display = [EventAdmin.list_display[0], "dashboard_link", *EventAdmin.list_display[1:]]
    # A plain "organization" filter lists every organization in the database, naming other
    # organizers' customers; only those of the listed events are offered.
    list_filter = [
        ("organization", admin.RelatedOnlyFieldListFilter) if f == "organization" else f for f in EventAdmin.list_filter
    ]

    @admin.display(description="Dashboard")
    def dashboard_link(self, obj):
        url = reverse("admin:events_event_dashboard", args=[obj.pk])
        return format_html('<a class="button mm-dashboard-link" href="{}">Open dashboard</a>', url)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_dashboard"
        ours = [
            path("<int:object_id>/dashboard/", wrap(self.dashboard_view), name=prefix),
            path(
                "<int:object_id>/dashboard/snapshot.json",
                wrap(self.snapshot_view),
                name=f"{prefix}_snapshot",
            ),
            path(
                "<int:object_id>/dashboard/actions/<str:action>/",
                wrap(self.action_view),
                name=f"{prefix}_action",
            ),
            path(
                "<int:object_id>/dashboard/models/<int:number>/publish/",
                wrap(self.publish_view),
                name=f"{prefix}_publish",
            ),
            path("<int:object_id>/schedules/", wrap(self.schedules_view), name=f"{prefix}_schedules"),
            path(
                "<int:object_id>/dashboard/export/<str:what>.csv",
                wrap(self.export_view),
                name=f"{prefix}_export",
            ),
        ]
        # Before the defaults: their `<path:object_id>/` would swallow these.
        return ours + super().get_urls()

    def _event_or_404(self, request, object_id, *, change: bool = False) -> Event:
        event = self.get_object(request, str(object_id))
        if event is None:
            raise Http404("No such event.")
        allowed = self.has_change_permission(request, event) if change else self.has_view_permission(request, event)
        if not allowed:
            raise PermissionDenied
        return event

    @staticmethod
    def snapshot_payload(event: Event) -> dict:
        """The snapshot with its chart, and `seq`: the last push it includes. A page that has seen
        a later push asks again."""
        seq = dashboard_seq(event_id=event.pk)
        key = SNAPSHOT_KEY.format(event_id=event.pk, seq=seq)
        cached = cache.get(key)
        if cached is not None:
            return cached
        snapshot = dashboard_snapshot(event=event)
        chart = snapshot["engagement"]["chart"]
        snapshot["engagement"]["chart_svg"] = interactions_chart_svg(
            points=chart["points"], tz=event.timezone, bucket_minutes=chart["bucket_minutes"]
        )
        snapshot["seq"] = seq
        cache.set(key, snapshot, timeout=SNAPSHOT_CACHE_SECONDS)
        return snapshot

    def dashboard_view(self, request, object_id):
        event = self._event_or_404(request, object_id)
        config = {
            "event_id": event.pk,
            "timezone": event.timezone,
            "snapshot_url": reverse("admin:events_event_dashboard_snapshot", args=[event.pk]),
            "ws_path": f"/ws/admin/events/{event.pk}/dashboard/",
            "actions": {
                name: reverse("admin:events_event_dashboard_action", args=[event.pk, name]) for name in ACTIONS
            },
            "exports": {
                name: reverse("admin:events_event_dashboard_export", args=[event.pk, name]) for name in exports.EXPORTS
            },
            "can_change": self.has_change_permission(request, event),
            "settings_url": reverse("admin:events_event_change", args=[event.pk]),
            # The models table's publish / roll back buttons: {number} is the version's.
            "publish_url": reverse("admin:events_event_dashboard_publish", args=[event.pk, 0]).replace(
                "/0/publish/", "/{number}/publish/"
            ),
        }
        context = {
            **self.admin_site.each_context(request),
            "title": f"{event.name}: dashboard",
            "subtitle": None,
            "opts": self.model._meta,
            # The page needs the width; the breadcrumbs lead back.
            "is_nav_sidebar_enabled": False,
            "original": event,
            "event": event,
            "config": config,
            # The first paint comes with the page; later ones come from the snapshot endpoint.
            "initial_snapshot": self.snapshot_payload(event),
        }
        return TemplateResponse(request, "dashboard/event_dashboard.html", context)

    def snapshot_view(self, request, object_id):
        event = self._event_or_404(request, object_id)
        return JsonResponse(self.snapshot_payload(event))

    def action_view(self, request, object_id, action):
        if request.method != "POST":
            return require_POST(lambda r: None)(request)
        event = self._event_or_404(request, object_id, change=True)
        service = ACTIONS.get(action)
        if service is None:
            known = ", ".join(ACTIONS)
            return JsonResponse({"ok": False, "message": UNKNOWN_ACTION.format(action=action, known=known)}, status=400)
        outcome = service(event=event)
        return JsonResponse({"ok": outcome.ok, "message": outcome.message, "run_id": outcome.run_id})

    def publish_view(self, request, object_id, number):
        """Publish a kept model version, or roll back to an earlier one (the models table's
        buttons, after a confirmation); change permission on the event needed."""
        if request.method != "POST":
            return require_POST(lambda r: None)(request)
        event = self._event_or_404(request, object_id, change=True)
        outcome = dashboard_publish(event=event, number=number)
        return JsonResponse({"ok": outcome.ok, "message": outcome.message}, status=200 if outcome.ok else 409)

    def export_view(self, request, object_id, what):
        if request.method != "GET":
            return require_GET(lambda r: None)(request)
        event = self._event_or_404(request, object_id)
        export = exports.EXPORTS.get(what)
        if export is None:
            raise Http404(UNKNOWN_EXPORT.format(what=what))
        header, rows = export(event=event)
        writer = csv.writer(exports.Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in exports.with_header(header, rows)), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="{event.slug}-{what}.csv"'
        return response

    def schedules_view(self, request, object_id):
        """The event's retraining and batch schedules: its own two rows, and only their frequency.
        Viewing needs view permission on the event, saving needs change permission."""
        event = self._event_or_404(request, object_id, change=request.method == "POST")
        current = schedules.event_schedules_get(event=event)
        initial = {"train_every_minutes": current.train_every_minutes, "batch_hour": current.batch_hour}
        form = SchedulesForm(request.POST if request.method == "POST" else None, initial=initial)
        if request.method == "POST" and form.is_valid():
            schedules.event_schedules_set(event=event, **form.cleaned_data)
            self.message_user(request, "Schedules saved.", level=messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{event.name}: schedules",
            "opts": self.model._meta,
            "original": event,
            "event": event,
            "form": form,
            "rows": [("Retrain", current.train), ("Daily batch", current.batch)]
            + [(f"Amazon Personalize {job}", row) for job, row in personalize_schedules(event=event)],
            "can_change": self.has_change_permission(request, event),
        }
        return TemplateResponse(request, "dashboard/event_schedules.html", context)
