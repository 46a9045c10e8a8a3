"""Export interactions in Amazon Personalize's interactions CSV (see events/interchange.py)."""

from django.core.management.base import BaseCommand, CommandError

from events.interchange import write_interactions_csv
from events.models import Event
from events.selectors import interactions_for_export

UNKNOWN_EVENT = "No event with slug {slug!r}."


class Command(BaseCommand):
    help = (
        "Write an event's interactions as Amazon Personalize's interactions CSV (USER_ID = context, "
        "ITEM_ID = attendee), the format import_interactions reads and the Personalize dataset import expects."
    )

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="slug of the event to export")
        parser.add_argument("--qualifying-only", action="store_true", help="only interactions that qualify")
        parser.add_argument("--output", default="-", help="file to write (default: standard output)")

    def handle(self, *args, event, qualifying_only, output, **options):
        event_obj = Event.objects.filter(slug=event).first()
        if event_obj is None:
            raise CommandError(UNKNOWN_EVENT.format(slug=event))
        rows = interactions_for_export(event=event_obj, qualifying_only=qualifying_only)
        if output == "-":
            count = write_interactions_csv(rows, self.stdout)
        else:
            try:
                with open(output, "w", encoding="utf-8", newline="") as out:
                    count = write_interactions_csv(rows, out)
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"{count} interactions exported.")
