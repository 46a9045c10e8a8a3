"""Organizer views of the Personalize backend: runs with their steps, ARNs and failure reasons,
and each event's remote resources with their state."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from events.admin import TenantFormsMixin, scoped_list_filter
from events.models import Event
from events.selectors import events_for_user
from recommendations.backends.personalize import clients, services
from recommendations.backends.personalize.models import PersonalizeRun, RemoteResource
from recommendations.backends.personalize.selectors import personalize_runs
from recommendations.models import TrainingRun

Kind = TrainingRun.Kind


def _warn_if_unconfigured(request) -> None:
    problem = clients.configuration_problem()
    if problem:
        messages.warning(request, problem)


class StartRunForm(forms.Form):
    event = forms.ModelChoiceField(queryset=Event.objects.none())
    kind = forms.ChoiceField(
        choices=[(k.value, k.label) for k in (Kind.PERSONALIZE, Kind.BATCH, Kind.TEARDOWN)], initial=Kind.PERSONALIZE
    )


@admin.register(PersonalizeRun)
class PersonalizeRunAdmin(TenantFormsMixin, admin.ModelAdmin):
    change_list_template = "admin/personalize/personalizerun_change_list.html"
    list_display = ["id", "event", "kind", "status", "trigger", "current_step", "attempts", "created_at", "message"]
    list_filter = scoped_list_filter(["kind", "status", "event"])
    readonly_fields = [
        "event",
        "kind",
        "status",
        "trigger",
        "progress",
        "attempts",
        "failure_reason",
        "steps_table",
        "model_version",
        "created_at",
        "started_at",
        "finished_at",
    ]
    exclude = ["steps", "message"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).filter(pk__in=personalize_runs().values("pk")).select_related("event")
        if request.user.is_superuser:
            return qs
        return qs.filter(event__in=events_for_user(user=request.user))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        _warn_if_unconfigured(request)
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        start = path("start/", self.admin_site.admin_view(self.start_view), name="personalize_personalizerun_start")
        return [start, *super().get_urls()]

    def start_view(self, request):
        """Start a run for one of the organizer's events (the first training has no resource
        row to act on yet, hence a page rather than an action)."""
        if not self.has_view_permission(request):
            return redirect("admin:index")
        form = StartRunForm(request.POST or None)
        form.fields["event"].queryset = events_for_user(user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                run = services.personalize_run_start(
                    event=form.cleaned_data["event"], kind=form.cleaned_data["kind"], trigger="admin"
                )
            except services.NotConfigured as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{run.get_kind_display()} run {run.pk} started for {run.event}.")
                return redirect("admin:personalize_personalizerun_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "problem": clients.configuration_problem(),
            "title": "Start an Amazon Personalize run",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/personalize/start_run.html", context)

    @admin.display(description="step")
    def current_step(self, obj):
        state = next((s for s in obj.steps if s.get("status") != "done"), None)
        return f"{state['name']} ({state['status']})" if state else "-"

    @admin.display(description="failure reason")
    def failure_reason(self, obj):
        return obj.message if obj.status == TrainingRun.Status.FAILED else ""

    @admin.display(description="steps")
    def steps_table(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    s.get("name"),
                    s.get("status"),
                    s.get("attempts", 0),
                    format_html_join("", "{}: {}<br>", sorted((s.get("arns") or {}).items())),
                    s.get("message", ""),
                    s.get("last_error", ""),
                )
                for s in obj.steps
            ),
        )
        return format_html(
            "<table><tr><th>step</th><th>status</th><th>attempts</th><th>ARNs</th><th>message</th>"
            "<th>last retried error</th></tr>{}</table>",
            rows,
        )


@admin.register(RemoteResource)
class RemoteResourceAdmin(TenantFormsMixin, admin.ModelAdmin):
    list_display = ["event", "kind", "name", "status", "arn", "updated_at"]
    list_filter = scoped_list_filter(["event", "kind", "status"])
    readonly_fields = ["event", "kind", "name", "arn", "status", "extra", "updated_at"]
    actions = ["retrain", "batch", "teardown"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("event")
        if request.user.is_superuser:
            return qs
        return qs.filter(event__in=events_for_user(user=request.user))

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        _warn_if_unconfigured(request)
        return super().changelist_view(request, extra_context)

    def _start(self, request, queryset, kind):
        events = {r.event for r in queryset}
        for event in events:
            try:
                run = services.personalize_run_start(event=event, kind=kind, trigger="admin")
            except services.NotConfigured as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
                return
            self.message_user(request, f"{event}: {run.get_kind_display()} run {run.pk} ({run.status}).")

    @admin.action(description="Retrain the selected resources' events")
    def retrain(self, request, queryset):
        self._start(request, queryset, Kind.PERSONALIZE)

    @admin.action(description="Batch inference for the selected resources' events")
    def batch(self, request, queryset):
        self._start(request, queryset, Kind.BATCH)

    @admin.action(description="Tear down the selected resources' events (deletes the campaign and all)")
    def teardown(self, request, queryset):
        self._start(request, queryset, Kind.TEARDOWN)
