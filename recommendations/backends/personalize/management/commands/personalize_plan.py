"""Dry run of an Amazon Personalize training: the calls it would make and the data it would
upload, without calling AWS and without writing to the database."""

from django.core.management.base import BaseCommand, CommandError

from events.models import Attendee, Event
from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.models import PersonalizeId
from recommendations.backends.personalize.runs.machine import run_plan

UNKNOWN_EVENT = "No event with slug {slug!r} (--event)."
PLACEHOLDER_TOKEN = "<event-token>"
SIMS_MIN_INTERACTIONS = 1000  # the SIMS recipe's documented minimum of unique interactions


class Command(BaseCommand):
    help = "Print the AWS calls and uploads an Amazon Personalize run of an event would make (no AWS call)."

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="event slug")

    def handle(self, *args, event: str, **options):
        found = Event.objects.filter(slug=event).first()
        if found is None:
            raise CommandError(UNKNOWN_EVENT.format(slug=event))
        token = (
            PersonalizeId.objects.filter(event=found, kind=PersonalizeId.Kind.EVENT, object_id=found.pk)
            .values_list("token", flat=True)
            .first()
            or PLACEHOLDER_TOKEN
        )
        interactions = mapping.training_interactions(event=found)
        erased = mapping.erased_attendee_ids(event=found)
        attendees = Attendee.objects.filter(event=found).exclude(pk__in=erased)
        out = self.stdout
        out.write(f"Amazon Personalize plan for {found.slug} (dry run: no AWS call).")
        problem = clients.configuration_problem()
        out.write(f"Configuration: {problem or 'complete'}")
        n_from = interactions.values("attendee").distinct().count()
        n_hidden = attendees.filter(consent_be_recommended=False).count()
        out.write(
            f"Upload: interactions.csv with {interactions.count()} rows "
            f"(qualifying, training-consented, from {n_from} attendees); "
            f"items.csv with {attendees.count()} rows ({n_hidden} hidden)."
        )
        if interactions.count() < SIMS_MIN_INTERACTIONS:
            out.write(
                f"Warning: SIMS needs at least {SIMS_MIN_INTERACTIONS} interactions to train; "
                f"the solution version would fail with {interactions.count()}."
            )
        out.write(f"eventValueThreshold: {mapping.event_value_threshold(found):g} (room dwell seconds)")
        for line in run_plan(event=found, token=token):
            out.write(line)
