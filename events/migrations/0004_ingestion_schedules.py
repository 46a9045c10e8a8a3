"""Periodic tasks of ingestion, in django-celery-beat's tables so organizers can see and edit them:
the outbox sweeper (committed interactions whose own task never ran) and the presence sweeper
(visits whose heartbeats stopped, or whose event's live window ended)."""

from django.db import migrations

SCHEDULES = [
    # (name, task, every seconds)
    ("Sweep unprocessed interactions (outbox)", "events.sweep_interactions", 60),
    ("Close stale room visits (presence)", "events.close_stale_visits", 30),
]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_room_visits"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
