"""Global periodic tasks of serving, in django-celery-beat's tables so organizers can see and edit
them: the phase refresh of every open event, and the flush of the funnel's "shown" buffer.
(Per-event schedules, training and batch, are created by `recommendations.jobs.schedules`.)"""

from django.db import migrations

SCHEDULES = [
    # (name, task, every seconds)
    ("Refresh the phase of every open event (serving)", "recommendations.refresh_phases", 60),
    ("Flush the funnel's shown buffer (serving)", "recommendations.flush_funnel", 60),
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
        ("recommendations", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
