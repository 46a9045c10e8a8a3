"""Per-event periodic tasks (django-celery-beat rows), which organizers can edit in the admin.

Each event gets two `PeriodicTask` rows, named `matchmaking:<event slug>:<job>`:
- `train`: retrain every `settings.RECOMMENDATION_TRAIN_EVERY_MINUTES` during the live window
  (start_time = live start, expires = live end). The training service itself skips a run when
  too few new qualifying interactions arrived, so a frequent schedule is cheap.
- `batch`: the daily batch at `BATCH_HOUR` in the event's time zone during the on-demand window
  (start_time = live end, expires = on-demand end).

Organizers change the frequencies with `event_schedules_set` (the event's "Schedules" page in the
admin): the train interval and the batch hour, nothing else. The raw rows, which take any task with
any arguments, are for superusers only.

`event_schedules_sync` is idempotent and runs after every save of an event. It creates missing
rows and keeps the *windows* (start, expiry, enabled) in line with the event, but never overwrites
the *frequency* of an existing row: that is the organizer's edit to keep. Once the event is closed,
or while it uses the Personalize backend (which has schedules of its own), the rows are disabled.

Two global rows are created by migration `0002_serving_schedules`: the phase refresh of every
open event (every minute; one row covers events created before this code, and needs no sync) and
the flush of the funnel's "shown" buffer.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from events.enums import Backend, Phase
from events.models import Event

TASK_NAME = "matchmaking:{slug}:{job}"
BATCH_HOUR = 3  # local time of the event: after the day's last session, before the next morning
TRAIN_EVERY_MINUTES_MIN = 1
TRAIN_EVERY_MINUTES_MAX = 24 * 60

TASK_TRAIN = "recommendations.train_event"
TASK_BATCH = "recommendations.batch_event"


class _Spec(TypedDict):
    task: str
    schedule: Callable[[], dict[str, Any]]  # a new row's schedule field, as keyword arguments
    start_time: datetime | None
    expires: datetime | None
    kwargs: dict[str, Any]


def _interval(minutes: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(every=minutes, period=IntervalSchedule.MINUTES)
    return schedule


def _daily(*, hour: int, tz: str) -> CrontabSchedule:
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour=str(hour), day_of_week="*", day_of_month="*", month_of_year="*", timezone=tz
    )
    return schedule


@transaction.atomic
def event_schedules_sync(*, event: Event) -> dict[str, PeriodicTask]:
    # Personalize events train and batch through their own run state machine and schedules
    # (recommendations/backends/personalize/schedules.py); these rows stay, disabled, for a switch back.
    enabled = event.phase != Phase.CLOSED and event.backend != Backend.PERSONALIZE
    specs: dict[str, _Spec] = {
        "train": {
            "task": TASK_TRAIN,
            "schedule": lambda: {"interval": _interval(settings.RECOMMENDATION_TRAIN_EVERY_MINUTES)},
            "start_time": event.live_starts_at,
            "expires": event.live_ends_at,
            "kwargs": {"event_id": event.pk, "trigger": "schedule"},
        },
        "batch": {
            "task": TASK_BATCH,
            "schedule": lambda: {"crontab": _daily(hour=BATCH_HOUR, tz=event.timezone)},
            "start_time": event.live_ends_at,
            "expires": event.on_demand_ends_at,
            "kwargs": {"event_id": event.pk, "trigger": "schedule"},
        },
    }
    out = {}
    for job, spec in specs.items():
        name = TASK_NAME.format(slug=event.slug, job=job)
        kwargs = json.dumps(spec["kwargs"])
        task = PeriodicTask.objects.filter(name=name).first()
        if task is None:
            task = PeriodicTask(name=name, task=spec["task"], **spec["schedule"]())
        task.kwargs = kwargs
        task.start_time = spec["start_time"]
        task.expires = spec["expires"]
        task.enabled = enabled
        task.description = f"{job} for event {event.slug} (managed: windows follow the event)"
        task.save()
        out[job] = task
    return out


def event_schedules_delete(*, event: Event) -> int:
    deleted, _ = PeriodicTask.objects.filter(name__startswith=TASK_NAME.format(slug=event.slug, job="")).delete()
    return deleted


@dataclass(frozen=True)
class EventSchedules:
    train: PeriodicTask
    batch: PeriodicTask

    @property
    def train_every_minutes(self) -> int:
        interval = self.train.interval
        if interval is None:
            return settings.RECOMMENDATION_TRAIN_EVERY_MINUTES
        return interval.every * {IntervalSchedule.HOURS: 60, IntervalSchedule.DAYS: 1440}.get(interval.period, 1)

    @property
    def batch_hour(self) -> int:
        crontab = self.batch.crontab
        return int(crontab.hour) if crontab is not None and crontab.hour.isdigit() else BATCH_HOUR


def event_schedules_get(*, event: Event) -> EventSchedules:
    """The event's two rows, created (and their windows brought in line) if missing."""
    rows = event_schedules_sync(event=event)
    return EventSchedules(train=rows["train"], batch=rows["batch"])


@transaction.atomic
def event_schedules_set(*, event: Event, train_every_minutes: int, batch_hour: int) -> EventSchedules:
    """What an organizer may change: how often the event retrains while live, and at which local
    hour its daily batch runs. Task, arguments and windows stay the product's."""
    if not TRAIN_EVERY_MINUTES_MIN <= train_every_minutes <= TRAIN_EVERY_MINUTES_MAX:
        raise ValueError(f"train_every_minutes must be between {TRAIN_EVERY_MINUTES_MIN} and {TRAIN_EVERY_MINUTES_MAX}")
    if not 0 <= batch_hour <= 23:
        raise ValueError("batch_hour must be between 0 and 23")
    current = event_schedules_get(event=event)
    current.train.interval = _interval(train_every_minutes)
    current.train.crontab = None
    current.train.save()
    current.batch.crontab = _daily(hour=batch_hour, tz=event.timezone)
    current.batch.interval = None
    current.batch.save()
    return current
