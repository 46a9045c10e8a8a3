"""The Celery app. Tasks are autodiscovered from each installed app's `tasks` module;
schedules live in the database (django-celery-beat) so organizers can edit them in the admin."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

app = Celery("matchmaking_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task durations and queueing time for Prometheus, and the worker's metrics port (CELERY_METRICS_PORT).
from matchmaking_site.metrics import connect_celery_signals  # noqa: E402

connect_celery_signals()
