"""Start an Amazon Personalize run of an event (training, batch or teardown); a Celery worker
advances it. With --wait, advance it here instead, polling until it finishes (for operators
without a worker at hand)."""

import time

from django.core.management.base import BaseCommand, CommandError

from events.models import Event
from recommendations.backends.personalize.runs.machine import personalize_run_advance
from recommendations.backends.personalize.services import NotConfigured, personalize_run_start
from recommendations.models import TrainingRun

UNKNOWN_EVENT = "No event with slug {slug!r} (--event)."
KINDS = {"train": TrainingRun.Kind.PERSONALIZE, "batch": TrainingRun.Kind.BATCH, "teardown": TrainingRun.Kind.TEARDOWN}


class Command(BaseCommand):
    help = "Start an Amazon Personalize training, batch or teardown run for an event."

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="event slug")
        parser.add_argument("--kind", choices=sorted(KINDS), default="train")
        parser.add_argument("--wait", action="store_true", help="advance the run here until it finishes")

    def handle(self, *args, event: str, kind: str, wait: bool, **options):
        found = Event.objects.filter(slug=event).first()
        if found is None:
            raise CommandError(UNKNOWN_EVENT.format(slug=event))
        try:
            run = personalize_run_start(event=found, kind=KINDS[kind], trigger="cli")
        except NotConfigured as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Run {run.pk} ({run.get_kind_display()}) for {found.slug}: {run.status}")
        while wait:
            countdown = personalize_run_advance(run_id=run.pk)
            run.refresh_from_db()
            if countdown is None:
                break
            self.stdout.write(f"  {run.status}, next look in {countdown:.0f} s")
            time.sleep(countdown)  # a command in a terminal, not a worker: waiting is its job
        self.stdout.write(f"Run {run.pk}: {run.status} {run.message}".rstrip())
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError(f"Run {run.pk} failed: {run.message}")
