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
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .enums import MeetingStatus
from .models import Attendee, Meeting

MEETINGS, DIGEST = "meetings", "digest"
KINDS = {MEETINGS: "email_meetings", DIGEST: "email_digest"}
KIND_NAMES = {MEETINGS: "emails about meeting requests and bookings", DIGEST: "the daily people-to-meet email"}
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


def mail(*, attendee: Attendee, kind: str, subject: str, body: str) -> EmailMessage:
    """A mail to `attendee` of `kind`, with its one-click unsubscribe in the body and the headers."""
    link = unsubscribe_url(attendee=attendee, kind=kind)
    footer = f"\n\n--\nYou get this because of {attendee.event.name}. Stop {KIND_NAMES[kind]}: {link}\n"
    return EmailMessage(
        subject=subject,
        body=body + footer,
        to=[attendee.email],
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


def _when(at, zone: str) -> str:
    """A time as the event's attendees read it: in the event's zone."""
    return timezone.localtime(at, timezone=ZoneInfo(zone)).strftime("%a %d %b, %H:%M")


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
    zone = meeting.event.timezone
    page = settings.SITE_URL + reverse("portal:meetings", kwargs={"event": meeting.event.slug})
    if what == MEETING_REQUEST:
        if meeting.status != MeetingStatus.PROPOSED or meeting.proposed_by_id == me.pk:
            return None
        times = "\n".join(f"  - {_when(s.starts_at, zone)}" for s in meeting.slots.all())
        body = (
            f"{other.display_name} would like to meet you at {meeting.event.name}"
            + (f":\n\n  \u201c{meeting.message}\u201d\n" if meeting.message else ".\n")
            + f"\nTimes proposed ({meeting.event.timezone}):\n{times}\n\nPick one, or propose others: {page}"
        )
        return mail(attendee=me, kind=MEETINGS, subject=f"{other.display_name} would like to meet you", body=body)
    if what == MEETING_BOOKED:
        if meeting.status != MeetingStatus.BOOKED or meeting.starts_at is None:
            return None
        from .meetings import meeting_ics

        place = meeting.place
        where = "" if place is None else f" at {place.name}" + (f" ({place.url})" if place.url else "")
        body = (
            f"Your meeting with {other.display_name} is booked: {_when(meeting.starts_at, zone)} "
            f"({meeting.event.timezone}){where}.\n\nThe calendar entry is attached. Your meetings: {page}"
        )
        message = mail(attendee=me, kind=MEETINGS, subject=f"Meeting with {other.display_name} booked", body=body)
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
