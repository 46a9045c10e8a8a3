"""The event's Personalize schedules as django-celery-beat rows (superusers edit them in the admin;
organizers see them on the event's Schedules page).

Created when an event is saved with the personalize backend, disabled when it is switched away.
The tasks themselves re-check their conditions (live window, new interactions, phase), so an
organizer who edits a schedule cannot make a run happen at the wrong time, only more or less often.
"""

import json

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import ClockedSchedule, IntervalSchedule, PeriodicTask

from events.enums import Backend
from events.models import Event

SWEEPER_NAME = "personalize: advance due runs"


def task_names(event: Event) -> dict[str, str]:
    return {
        "retrain": f"personalize retrain: {event.slug}",
        "batch": f"personalize batch: {event.slug}",
        "teardown": f"personalize teardown: {event.slug}",
    }


def personalize_schedules(*, event: Event) -> list[tuple[str, PeriodicTask]]:
    """The event's Personalize rows that exist, as (job, row), for the event's Schedules page."""
    names = task_names(event)
    rows = {row.name: row for row in PeriodicTask.objects.filter(name__in=names.values())}
    return [(job, rows[name]) for job, name in names.items() if name in rows]


def personalize_schedules_sync(*, event: Event) -> list[PeriodicTask]:
    """Create or update the three schedules of a personalize event; disable them otherwise."""
    names = task_names(event)
    if event.backend != Backend.PERSONALIZE:
        PeriodicTask.objects.filter(name__in=names.values()).update(enabled=False)
        return []
    kwargs = json.dumps({"event_id": event.pk})
    hourly, _ = IntervalSchedule.objects.get_or_create(
        every=settings.PERSONALIZE_RETRAIN_HOURS, period=IntervalSchedule.HOURS
    )
    daily, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.DAYS)
    minute, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    tasks = [
        _upsert(
            names["retrain"],
            task="personalize.retrain_if_due",
            interval=hourly,
            kwargs=kwargs,
            start_time=event.live_starts_at,
            expires=event.live_ends_at,
            description="Retrain during the live window when enough new qualifying interactions arrived.",
        ),
        # Starting at the end of the live window: the first batch when the event goes on demand,
        # then one a day.
        _upsert(
            names["batch"],
            task="personalize.batch_if_due",
            interval=daily,
            kwargs=kwargs,
            start_time=event.live_ends_at,
            expires=event.on_demand_ends_at,
            description="Batch inference into the batch table while the event is on demand.",
        ),
    ]
    if event.on_demand_ends_at:
        clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=event.on_demand_ends_at)
        tasks.append(
            _upsert(
                names["teardown"],
                task="personalize.teardown_if_due",
                clocked=clocked,
                one_off=True,
                kwargs=kwargs,
                description="Delete the campaign and every other remote resource when the event closes.",
            )
        )
    PeriodicTask.objects.get_or_create(
        name=SWEEPER_NAME,
        defaults={"task": "personalize.advance_due_runs", "interval": minute, "enabled": True},
    )
    return tasks


def _upsert(name: str, **fields) -> PeriodicTask:
    task, created = PeriodicTask.objects.get_or_create(name=name, defaults={**fields, "enabled": True})
    if not created:
        # Keep what an organizer edited (the interval, enabled), follow the event's dates.
        for key in ("start_time", "expires", "clocked", "kwargs"):
            if key in fields:
                setattr(task, key, fields[key])
        task.save()
    return task


def on_event_saved(sender, instance: Event, created: bool = False, **kwargs) -> None:
    """Keeps the schedules in step with the event, after commit, so that saving an event costs
    no query here (a new event on another backend has no schedules to disable)."""
    if kwargs.get("raw") or (created and instance.backend != Backend.PERSONALIZE):
        return
    transaction.on_commit(lambda: personalize_schedules_sync(event=instance))
