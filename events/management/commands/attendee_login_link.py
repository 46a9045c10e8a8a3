from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from events.models import Attendee, Event
from events.services import LOGIN_LINK_MINUTES_MAX, login_link_issue


class Command(BaseCommand):
    help = (
        "Print a fresh sign-in link for an attendee: single use, valid LOGIN_LINK_MINUTES minutes "
        "(the demo's attendee login, and events without single sign-on)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="Event slug")
        parser.add_argument("--attendee", help="External id (default: the event's first attendee)")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--minutes", type=int, help="Lifetime (default: settings.LOGIN_LINK_MINUTES)")

    def handle(self, *args, event, attendee, base_url, minutes, **options):
        minutes = settings.LOGIN_LINK_MINUTES if minutes is None else minutes
        if not 1 <= minutes <= LOGIN_LINK_MINUTES_MAX:
            raise CommandError(f"--minutes: {minutes} is not between 1 and {LOGIN_LINK_MINUTES_MAX}")
        event_obj = Event.objects.filter(slug=event).first()
        if event_obj is None:
            raise CommandError(f"--event: no event {event!r}")
        qs = Attendee.objects.filter(event=event_obj).order_by("pk")
        found = qs.filter(external_id=attendee).first() if attendee else qs.first()
        if found is None:
            raise CommandError(f"--attendee: no attendee {attendee!r} in event {event!r}")
        link, token = login_link_issue(attendee=found, minutes=minutes)
        path = reverse("portal:login-link", kwargs={"event": event, "token": token})
        self.stdout.write(
            f"{found.display_name} ({found.external_id}), single use, valid until "
            f"{link.expires_at:%Y-%m-%d %H:%M} UTC ({minutes} min): {base_url.rstrip('/')}{path}"
        )
