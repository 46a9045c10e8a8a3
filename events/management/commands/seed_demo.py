from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from events.demo import seed_demo_event
from events.models import Event


class Command(BaseCommand):
    help = "Create a realistic demo event (attendees, rooms, content, a day of interactions)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2009, help="Same seed, same rows.")
        parser.add_argument("--slug", default="demo")
        parser.add_argument("--attendees", type=int, default=300)
        parser.add_argument(
            "--start",
            help="Start of the live day (ISO 8601). Default: six hours ago, so the demo is live now.",
        )
        parser.add_argument("--reset", action="store_true", help="Delete the event first if it exists.")

    def handle(self, *args, seed, slug, attendees, start, reset, **options):
        if start:
            parsed = parse_datetime(start)
            if parsed is None:
                raise CommandError(f"--start: {start!r} is not an ISO 8601 date-time")
            start_at = parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
        else:
            start_at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
        existing = Event.objects.filter(slug=slug).first()
        if existing and not reset:
            self.stdout.write(f"Event {slug!r} already exists; nothing to do (use --reset to recreate it).")
            return
        if existing:
            existing.delete()
        with tqdm(
            total=attendees, desc="attendees", unit="att", disable=options["verbosity"] < 1, file=self.stderr._out
        ) as bar:
            summary = seed_demo_event(seed=seed, start=start_at, slug=slug, attendees=attendees, progress=bar.update)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {summary.event.slug!r}: {summary.attendees} attendees, {summary.rooms} rooms, "
                f"{summary.contents} content items, {summary.interactions} interactions "
                f"({summary.qualifying} qualifying)."
            )
        )
