"""Email to attendees, through Django's email backend (`EMAIL_URL`: the console in `make demo`, SMTP
in production), sent by Celery tasks that retry with backoff when the mail server fails.

- **What.** A meeting request (to the one asked, with the proposed times) and a booking (to both,
  with the calendar file attached), here; the daily "people to meet" digest in
  `recommendations.digest` (it needs the suggestions).
- **Consent.** Nothing goes to an attendee without an address, or who turned the kind off
  (`Attendee.email_meetings`, `email_digest`); the digest also needs them to receive suggestions.
- **One-click unsubscribe.** Every mail carries a signed link for its kind, in the body and in the
  `List-Unsubscribe` header with `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): a mail
  client's POST to it unsubscribes at once; opening it shows a page whose button does (a mail
  scanner that fetches links unsubscribes nobody).
- **After commit.** A mail is enqueued when the transaction that caused it commits: a rolled-back
  booking mails nobody. The task reads the rows again when it runs, so a meeting cancelled in
  between is not announced. A broker outage at that moment loses the mail, never the booking: the
  meeting is committed and shown on both people's pages either way (logged as a warning).
- **Language.** Each mail is written in the language its reader chose on the attendee pages
  (`Attendee.language`; the site's default before they chose), times in the event's zone.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .enums import MeetingStatus
from .models import Attendee, Meeting

MEETINGS, DIGEST = "meetings", "digest"
KINDS = {MEETINGS: "email_meetings", DIGEST: "email_digest"}
KIND_NAMES = {
    MEETINGS: gettext_noop("emails about meeting requests and bookings"),
    DIGEST: gettext_noop("the daily people-to-meet email"),
}
MEETING_REQUEST, MEETING_BOOKED = "meeting_request", "meeting_booked"
UNSUBSCRIBE_SALT = "matchmaking.unsubscribe"

logger = logging.getLogger(__name__)


def unsubscribe_token(*, attendee: Attendee, kind: str) -> str:
    return signing.dumps({"a": attendee.pk, "k": kind}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_read(token: str) -> tuple[Attendee, str] | None:
    """The attendee and kind a token unsubscribes, or None for a forged or unknown one."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    kind = data.get("k") if isinstance(data, dict) else None
    if kind not in KINDS:
        return None
    attendee = Attendee.objects.select_related("event").filter(pk=data.get("a")).first()
    return (attendee, kind) if attendee is not None else None


def unsubscribe(*, attendee: Attendee, kind: str) -> None:
    field = KINDS[kind]
    if getattr(attendee, field):
        setattr(attendee, field, False)
        attendee.save(update_fields=[field, "updated_at"])


def unsubscribe_url(*, attendee: Attendee, kind: str) -> str:
    path = reverse("portal:unsubscribe", kwargs={"token": unsubscribe_token(attendee=attendee, kind=kind)})
    return settings.SITE_URL + path


def wants(attendee: Attendee, kind: str) -> bool:
    return bool(attendee.email) and getattr(attendee, KINDS[kind])


def in_language(attendee: Attendee) -> AbstractContextManager:
    """Write inside this: the language `attendee` reads (their choice, else the site's default)."""
    return translation.override(attendee.language or settings.LANGUAGE_CODE)


def mail(*, attendee: Attendee, kind: str, subject: str, body: str) -> EmailMessage:
    """A mail to `attendee` of `kind`, with its one-click unsubscribe in the body and the headers.
    Call it inside `in_language(attendee)`, as the subject and body were written."""
    link = unsubscribe_url(attendee=attendee, kind=kind)
    stop = _("You get this because of %(event)s. Stop %(kind)s: %(link)s") % {
        "event": attendee.event.name,
        "kind": _(KIND_NAMES[kind]),
        "link": link,
    }
    footer = f"\n\n--\n{stop}\n"
    return EmailMessage(
        subject=subject,
        body=body + footer,
        to=[attendee.email],
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


def _when(at, zone: str) -> str:
    """A time as the event's attendees read it: in the event's zone, in the active language."""
    return formats.date_format(timezone.localtime(at, timezone=ZoneInfo(zone)), "D d M, H:i")


def meeting_mail(*, meeting_id: int, attendee_id: int, what: str) -> EmailMessage | None:
    """The mail about a meeting for one of its two people, as the rows are now; None when there is
    nothing (any more) to say or they do not want it."""
    meeting = (
        Meeting.objects.select_related("event", "requester", "recipient", "place", "requester__event")
        .prefetch_related("slots")
        .filter(pk=meeting_id)
        .first()
    )
    if meeting is None or attendee_id not in (meeting.requester_id, meeting.recipient_id):
        return None
    me, other = (
        (meeting.requester, meeting.recipient)
        if attendee_id == meeting.requester_id
        else (meeting.recipient, meeting.requester)
    )
    me.event = meeting.event
    if not wants(me, MEETINGS):
        return None
    with in_language(me):
        return _meeting_mail(meeting, me, other, what)


def _meeting_mail(meeting: Meeting, me: Attendee, other: Attendee, what: str) -> EmailMessage | None:
    zone = meeting.event.timezone
    page = settings.SITE_URL + reverse("portal:meetings", kwargs={"event": meeting.event.slug})
    if what == MEETING_REQUEST:
        if meeting.status != MeetingStatus.PROPOSED or meeting.proposed_by_id == me.pk:
            return None
        times = "\n".join(f"  - {_when(s.starts_at, zone)}" for s in meeting.slots.all())
        names = {"name": other.display_name, "event": meeting.event.name}
        if meeting.message:
            ask = _("%(name)s would like to meet you at %(event)s:") % names + f"\n\n  \u201c{meeting.message}\u201d\n"
        else:
            ask = _("%(name)s would like to meet you at %(event)s.") % names + "\n"
        body = (
            ask
            + "\n"
            + _("Times proposed (%(zone)s):") % {"zone": zone}
            + f"\n{times}\n\n"
            + _("Pick one, or propose others: %(page)s") % {"page": page}
        )
        subject = _("%(name)s would like to meet you") % names
        return mail(attendee=me, kind=MEETINGS, subject=subject, body=body)
    if what == MEETING_BOOKED:
        if meeting.status != MeetingStatus.BOOKED or meeting.starts_at is None:
            return None
        from .meetings import meeting_ics

        place = meeting.place
        values = {"name": other.display_name, "when": _when(meeting.starts_at, zone), "zone": zone}
        if place is None:
            booked = _("Your meeting with %(name)s is booked: %(when)s (%(zone)s).") % values
        else:
            where = place.name + (f" ({place.url})" if place.url else "")
            booked = _("Your meeting with %(name)s is booked: %(when)s (%(zone)s) at %(place)s.") % {
                **values,
                "place": where,
            }
        body = booked + "\n\n" + _("The calendar entry is attached. Your meetings: %(page)s") % {"page": page}
        subject = _("Meeting with %(name)s booked") % values
        message = mail(attendee=me, kind=MEETINGS, subject=subject, body=body)
        message.attach(f"meeting-{meeting.pk}.ics", meeting_ics(meeting), "text/calendar")
        return message
    return None


def meeting_requested(meeting: Meeting) -> None:
    """In the transaction that proposed (or proposed other times): the one who must answer is told."""
    answer_by = meeting.recipient_id if meeting.proposed_by_id == meeting.requester_id else meeting.requester_id
    _after_commit(meeting.pk, [answer_by], MEETING_REQUEST)


def meeting_booked(meeting: Meeting) -> None:
    """In the transaction that booked it: both are told, with the calendar file."""
    _after_commit(meeting.pk, [meeting.requester_id, meeting.recipient_id], MEETING_BOOKED)


def _after_commit(meeting_id: int, attendee_ids: list[int], what: str) -> None:
    from .tasks import send_meeting_email  # tasks import the services

    def enqueue() -> None:
        for attendee_id in attendee_ids:
            try:
                send_meeting_email.delay(meeting_id=meeting_id, attendee_id=attendee_id, what=what)
            except Exception:  # kombu/redis raise many types when the broker is unreachable
                logger.warning("Could not enqueue %s mail for meeting %s.", what, meeting_id, exc_info=True)

    transaction.on_commit(enqueue)
