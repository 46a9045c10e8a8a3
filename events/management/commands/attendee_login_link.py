from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from events.api.auth import LOGIN_LINK_MAX_AGE, attendee_login_token
from events.models import Attendee, Event


class Command(BaseCommand):
    help = "Print a signed sign-in link for an attendee (valid for a week): the demo's attendee login."

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="Event slug")
        parser.add_argument("--attendee", help="External id (default: the event's first attendee)")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, event, attendee, base_url, **options):
        event_obj = Event.objects.filter(slug=event).first()
        if event_obj is None:
            raise CommandError(f"--event: no event {event!r}")
        qs = Attendee.objects.filter(event=event_obj).order_by("pk")
        found = qs.filter(external_id=attendee).first() if attendee else qs.first()
        if found is None:
            raise CommandError(f"--attendee: no attendee {attendee!r} in event {event!r}")
        path = reverse("portal:login-link", kwargs={"event": event, "token": attendee_login_token(attendee=found)})
        days = LOGIN_LINK_MAX_AGE // 86400
        self.stdout.write(
            f"{found.display_name} ({found.external_id}), valid {days} days: {base_url.rstrip('/')}{path}"
        )
