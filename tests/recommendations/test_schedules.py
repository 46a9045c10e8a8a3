"""Per-event periodic tasks: created with the event's windows, kept in line with it, organizer
edits of the frequency preserved, disabled at close."""

import json
from datetime import timedelta

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from events.enums import Backend, Phase
from recommendations.jobs.schedules import event_schedules_delete, event_schedules_sync
from tests.factories import LIVE_START

from .factories import ServingEventFactory

pytestmark = pytest.mark.django_db


def rows(event):
    return {
        t.name.rsplit(":", 1)[1]: t for t in PeriodicTask.objects.filter(name__startswith=f"matchmaking:{event.slug}:")
    }


def test_sync_creates_two_tasks_with_windows(settings):
    settings.RECOMMENDATION_TRAIN_EVERY_MINUTES = 20
    event = ServingEventFactory(timezone="Europe/Paris")
    event_schedules_sync(event=event)
    tasks = rows(event)
    assert set(tasks) == {"train", "batch"}
    train, batch = tasks["train"], tasks["batch"]
    assert (train.task, train.interval.every, train.start_time, train.expires) == (
        "recommendations.train_event",
        20,
        LIVE_START,
        LIVE_START + timedelta(hours=9),
    )
    assert json.loads(train.kwargs) == {"event_id": event.pk, "trigger": "schedule"}
    assert (batch.task, batch.crontab.hour, batch.crontab.minute, str(batch.crontab.timezone)) == (
        "recommendations.batch_event",
        "3",
        "0",
        "Europe/Paris",
    )
    assert (batch.start_time, batch.expires) == (LIVE_START + timedelta(hours=9), LIVE_START + timedelta(days=30))
    assert all(t.enabled for t in tasks.values())


def test_sync_is_idempotent_and_keeps_organizer_frequency():
    event = ServingEventFactory()
    event_schedules_sync(event=event)
    train = rows(event)["train"]
    train.interval = IntervalSchedule.objects.create(every=45, period=IntervalSchedule.MINUTES)
    train.save()
    event.live_ends_at = LIVE_START + timedelta(hours=12)
    event.save()
    event_schedules_sync(event=event)
    tasks = rows(event)
    assert len(tasks) == 2
    assert (tasks["train"].interval.every, tasks["train"].expires) == (45, LIVE_START + timedelta(hours=12))


def test_sync_disables_every_task_of_a_closed_event():
    event = ServingEventFactory()
    event_schedules_sync(event=event)
    event.phase = Phase.CLOSED
    event.save()
    event_schedules_sync(event=event)
    assert [t.enabled for t in rows(event).values()] == [False, False]


def test_saving_an_event_syncs_schedules_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = ServingEventFactory()
    assert set(rows(event)) == {"train", "batch"}


def test_delete_removes_only_that_events_tasks():
    event, other = ServingEventFactory(slug="summit"), ServingEventFactory(slug="summit-2")
    event_schedules_sync(event=event)
    event_schedules_sync(event=other)
    assert event_schedules_delete(event=event) == 2
    assert (len(rows(event)), len(rows(other))) == (0, 2)


def test_global_schedules_exist_after_migrations():
    tasks = dict(
        PeriodicTask.objects.filter(
            task__in=["recommendations.refresh_phases", "recommendations.flush_funnel"]
        ).values_list("task", "interval__every")
    )
    assert tasks == {"recommendations.refresh_phases": 60, "recommendations.flush_funnel": 60}


def test_personalize_event_leaves_training_and_batch_to_its_own_schedules():
    event = ServingEventFactory(backend=Backend.PERSONALIZE)
    event_schedules_sync(event=event)
    assert [t.enabled for t in rows(event).values()] == [False, False]
    event.backend = Backend.LOCAL
    event.save()
    event_schedules_sync(event=event)
    assert [t.enabled for t in rows(event).values()] == [True, True]
