"""Turn attendees' questionnaire answers into inferred interactions (see events/questionnaire.py)."""

from django.core.management.base import BaseCommand, CommandError

from events.models import Event
from events.questionnaire import questionnaire_hydrate

UNKNOWN_EVENT = "No event with slug {slug!r}."


class Command(BaseCommand):
    help = "Create (or bring up to date) the questionnaire interactions of an event's attendees. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="slug of the event")

    def handle(self, *args, event, **options):
        event_obj = Event.objects.filter(slug=event).first()
        if event_obj is None:
            raise CommandError(UNKNOWN_EVENT.format(slug=event))
        stats = questionnaire_hydrate(event=event_obj)
        self.stdout.write(f"{stats.created} created, {stats.removed} removed, {stats.unchanged} unchanged.")
