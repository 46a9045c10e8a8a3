"""The daily "people to meet" email (`events.notifications` has the rules: an address, the kind
wanted, one-click unsubscribe). Sent while an event runs, from the day before its live window to its
end, to attendees who receive suggestions: the first DIGEST_SIZE of their list, with the reason each
is there, from the one serving path (`recommendations_for`), so the mail says what the widget says."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from events.models import Attendee, Event
from events.notifications import DIGEST, in_language, mail, wants
from matchmaking_site.sentences import localize
from recommendations.serving.lists import recommendations_for

DIGEST_SIZE = 5
AHEAD = timedelta(days=1)  # the first digest goes out the day before the live window opens


def digest_mail(*, attendee_id: int) -> EmailMessage | None:
    attendee = Attendee.objects.select_related("event").filter(pk=attendee_id).first()
    if attendee is None or not wants(attendee, DIGEST) or not attendee.consent_receive_recommendations:
        return None
    result = recommendations_for(attendee=attendee, num_results=DIGEST_SIZE)
    if not result.items:
        return None
    event = attendee.event
    page = settings.SITE_URL + reverse("portal:lobby", kwargs={"event": event.slug})
    with in_language(attendee):
        lines = []
        for item in result.items:
            who = item.display_name + (f", {item.headline}" if item.headline else "")
            why = localize(item.reasons[0]["text"]) if item.reasons else ""
            lines.append(f"  - {who}" + (f": {why}" if why else ""))
        body = (
            _("People to meet at %(event)s today:") % {"event": event.name}
            + "\n\n"
            + "\n".join(lines)
            + "\n\n"
            + _("Say hello: %(page)s") % {"page": page}
        )
        subject = _("People to meet at %(event)s") % {"event": event.name}
        return mail(attendee=attendee, kind=DIGEST, subject=subject, body=body)


def digest_recipients(*, now: datetime | None = None) -> list[int]:
    """Attendees a digest goes to today: of events running (or starting tomorrow), with an address,
    the digest wanted, and suggestions received."""
    now = now or timezone.now()
    running = Event.objects.filter(live_starts_at__lte=now + AHEAD).filter(
        Q(live_ends_at__gte=now) | Q(live_ends_at__isnull=True, live_starts_at__gte=now - AHEAD)
    )
    return list(
        Attendee.objects.filter(event__in=running, email_digest=True, consent_receive_recommendations=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
