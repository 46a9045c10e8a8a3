"""1:1 meetings: propose slots, answer, book, cancel, and the calendar file.

- **Slots.** An event's meeting hours are its `MeetingWindow`s; slots of `Event.meeting_slot_minutes`
  are laid from each window's start. A slot is *free* for two attendees when it has not started,
  neither of them holds a booked meeting then, neither planned a session (a room with a schedule in
  `planned_rooms`) that overlaps it, and, when the organizer set up places, a place is free then.
  Only free slots are offered (`free_slots`) or accepted in a proposal.
- **The exchange.** One proposes up to MAX_PROPOSED slots (`meeting_propose`); the other accepts
  one (`meeting_accept`), declines, or proposes others (`meeting_counter`: then the first answers).
  Either cancels a booked meeting, or the proposer withdraws an open one (`meeting_cancel`).
  Each checks in at the time (`meeting_check_in`; joining a virtual table's link through the pages
  counts); once both did, the meeting is held.
- **Never double-booked.** Booking writes holds (`MeetingHold`): one per person and one for the
  place, over the slot's time. A slot is busy when it overlaps a hold, not only when it starts with
  one (overlapping meeting windows, or a slot length changed after bookings, lay slots that overlap
  without starting together). The database refuses a second hold of a person or a place whose time
  overlaps (PostgreSQL exclusion constraints; equal starts everywhere), so two accepts at the same
  instant cannot both win, whichever request commits first; the meeting row is locked while it is
  answered, so one meeting is answered once. The loser gets `MeetingConflict` (HTTP 409).
- **Calendar.** `meeting_ics` writes an RFC 5545 file with the icalendar package: the same UID for
  both people, and a cancellation (METHOD:CANCEL) once cancelled, so calendars update the entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop
from icalendar import Calendar
from icalendar import Event as CalendarEvent

from . import notifications, webhooks
from .enums import MeetingStatus
from .models import Attendee, Block, Connection, Event, Meeting, MeetingHold, MeetingPlace, MeetingSlot, Room

MAX_PROPOSED = 10
GRID_HORIZON = 500  # slots laid per request, at most (days of meeting hours in 15-minute slots)

WITH_ONESELF = gettext_noop("You cannot meet yourself.")
BLOCKED = gettext_noop("You cannot meet this person.")
NOT_SUGGESTIBLE = gettext_noop("This person takes meeting requests only from their connections.")
NO_SLOTS = gettext_noop("Propose at least one slot.")
TOO_MANY_SLOTS = gettext_noop("Propose at most {n} slots.")
NOT_A_SLOT = gettext_noop("{at} is not a slot of the event's meeting hours.")
NOT_FREE = gettext_noop("{at} is not free for both of you any more.")
ALREADY_OPEN = gettext_noop("There is already an open meeting request between you (id {id}); answer or cancel it.")
NOT_YOURS_TO_ANSWER = gettext_noop("It is the other person's turn to answer.")
NOT_PROPOSED = gettext_noop("This meeting is {status}, not waiting for an answer.")
NOT_AMONG_PROPOSED = gettext_noop("{at} is not one of the proposed slots.")
TAKEN = gettext_noop("That time was just booked by someone else; pick another slot.")
NO_PLACE = gettext_noop("No meeting place is free at that time any more; pick another slot.")
NOT_CANCELLABLE = gettext_noop("This meeting is {status}; only an open or booked meeting can be cancelled.")
NOT_A_PARTY = gettext_noop("You are not part of this meeting.")
NOT_BOOKED = gettext_noop("Only a booked meeting can be checked in to (this one is {status}).")
TOO_EARLY = gettext_noop("Check-in opens {minutes} minutes before the meeting.")
TOO_LATE = gettext_noop("This meeting is over.")
CHECK_IN_EARLY = timedelta(minutes=10)


class MeetingConflict(Exception):
    """The request was valid but lost to another one (HTTP 409): the message says what to do."""


def slot_length(event: Event) -> timedelta:
    return timedelta(minutes=event.meeting_slot_minutes)


def slot_grid(event: Event, *, after: datetime | None = None) -> list[datetime]:
    """Every slot start of the event's meeting hours (from `after` on), in time order and each once
    (windows may overlap), at most GRID_HORIZON."""
    length = slot_length(event)
    out: set[datetime] = set()
    windows = event.meeting_windows.all()
    if after is not None:
        windows = windows.filter(ends_at__gt=after)
    for window in windows.order_by("starts_at"):
        at = window.starts_at
        while at + length <= window.ends_at and len(out) < GRID_HORIZON:
            if after is None or at >= after:
                out.add(at)
            at += length
    return sorted(out)


def _overlapping(spans: Iterable[tuple[datetime, datetime]], grid: list[datetime], length: timedelta) -> set[datetime]:
    """The slots of `grid` (each `length` long) that overlap any of `spans` (start, end)."""
    return {at for starts, ends in spans for at in grid if at < ends and at + length > starts}


def _busy(event: Event, people: Iterable[Attendee], grid: list[datetime]) -> set[datetime]:
    """The slots of `grid` that overlap a booked meeting or a planned session of any of `people`."""
    if not grid:
        return set()
    pks = [p.pk for p in people]
    length = slot_length(event)
    first, end = min(grid), max(grid) + length
    holds = MeetingHold.objects.filter(attendee_id__in=pks, starts_at__lt=end, ends_at__gt=first)
    busy = _overlapping(holds.values_list("starts_at", "ends_at"), grid, length)
    sessions = (
        Room.objects.filter(planned_attendees__in=pks, starts_at__isnull=False, ends_at__isnull=False)
        .filter(starts_at__lt=end, ends_at__gt=first)
        .values_list("starts_at", "ends_at")
        .distinct()
    )
    # filtered on not-null in the query; the types cannot know it
    busy |= _overlapping(((s, e) for s, e in sessions if s is not None and e is not None), grid, length)
    return busy


def _places_taken(event: Event, starts: datetime, ends: datetime) -> set[int]:
    """The event's places held at some moment of [starts, ends)."""
    held = MeetingHold.objects.filter(place__event=event, starts_at__lt=ends, ends_at__gt=starts)
    return {pk for pk in held.values_list("place_id", flat=True) if pk is not None}


def _placeless(event: Event, grid: list[datetime]) -> set[datetime]:
    """Slots of `grid` when the event has places and every one of them is taken at some moment."""
    n_places = event.meeting_places.count()
    if not n_places or not grid:
        return set()
    length = slot_length(event)
    held = MeetingHold.objects.filter(place__event=event, starts_at__lt=max(grid) + length, ends_at__gt=min(grid))
    taken: dict[datetime, set[int]] = {}
    for place_id, starts, ends in held.values_list("place_id", "starts_at", "ends_at"):
        for at in _overlapping([(starts, ends)], grid, length):
            taken.setdefault(at, set()).add(place_id)
    return {at for at, places in taken.items() if len(places) >= n_places}


def free_slots(
    event: Event, a: Attendee, b: Attendee, *, now: datetime | None = None, limit: int = 20
) -> list[datetime]:
    """The next `limit` slots free for both `a` and `b` (see the module docstring)."""
    grid = slot_grid(event, after=now or timezone.now())
    unavailable = _busy(event, [a, b], grid) | _placeless(event, grid)
    return [at for at in grid if at not in unavailable][:limit]


def _check_pair(requester: Attendee, recipient: Attendee) -> None:
    if requester.pk == recipient.pk:
        raise ValidationError({"recipient": [WITH_ONESELF]})
    if Block.objects.filter(Q(blocker=requester, blocked=recipient) | Q(blocker=recipient, blocked=requester)).exists():
        raise ValidationError({"recipient": [BLOCKED]})
    connected = Connection.objects.filter(
        Q(requester=requester, recipient=recipient) | Q(requester=recipient, recipient=requester)
    ).exists()
    if not recipient.consent_be_recommended and not connected:
        raise ValidationError({"recipient": [NOT_SUGGESTIBLE]})


def _check_slots(event: Event, a: Attendee, b: Attendee, starts: list[datetime]) -> list[datetime]:
    """The proposed starts, each a free slot of the meeting hours; ValidationError per slot."""
    if not starts:
        raise ValidationError({"slots": [NO_SLOTS]})
    if len(starts) > MAX_PROPOSED:
        raise ValidationError({"slots": [TOO_MANY_SLOTS.format(n=MAX_PROPOSED)]})
    now = timezone.now()
    grid = set(slot_grid(event, after=now))
    free = set(free_slots(event, a, b, now=now, limit=GRID_HORIZON))
    errors = []  # one message per refused slot, naming it
    for at in starts:
        if at not in grid:
            errors.append(NOT_A_SLOT.format(at=at.isoformat()))
        elif at not in free:
            errors.append(NOT_FREE.format(at=at.isoformat()))
    if errors:
        raise ValidationError({"slots": errors})
    return sorted(set(starts))


@transaction.atomic
def meeting_propose(*, requester: Attendee, recipient: Attendee, starts: list[datetime], message: str = "") -> Meeting:
    _check_pair(requester, recipient)
    event = requester.event
    # The pair's rows, locked: two proposals between the same two people at once make one meeting.
    Attendee.objects.select_for_update().filter(pk__in=sorted([requester.pk, recipient.pk])).count()
    open_one = Meeting.objects.filter(
        Q(requester=requester, recipient=recipient) | Q(requester=recipient, recipient=requester),
        status=MeetingStatus.PROPOSED,
    ).first()
    if open_one is not None:
        raise ValidationError({"recipient": [ALREADY_OPEN.format(id=open_one.pk)]})
    slots = _check_slots(event, requester, recipient, starts)
    meeting = Meeting.objects.create(
        event=event, requester=requester, recipient=recipient, proposed_by=requester, message=message
    )
    MeetingSlot.objects.bulk_create([MeetingSlot(meeting=meeting, starts_at=at) for at in slots])
    notifications.meeting_requested(meeting)
    return meeting


def _locked(meeting: Meeting, by: Attendee) -> Meeting:
    # Only the meeting's row (of=self): locking the joined event and attendee rows too would queue
    # every answer of the event behind one another; the holds' constraints keep people apart.
    meeting = (
        Meeting.objects.select_for_update(of=("self",))
        .select_related("event", "requester", "recipient")
        .get(pk=meeting.pk)
    )
    if by.pk not in (meeting.requester_id, meeting.recipient_id):
        raise ValidationError({"detail": [NOT_A_PARTY]})
    return meeting


def _other(meeting: Meeting, by: Attendee) -> Attendee:
    return meeting.recipient if by.pk == meeting.requester_id else meeting.requester


def _awaiting(meeting: Meeting, by: Attendee) -> None:
    if meeting.status != MeetingStatus.PROPOSED:
        raise MeetingConflict(NOT_PROPOSED.format(status=meeting.get_status_display().lower()))
    if by.pk == meeting.proposed_by_id:
        raise ValidationError({"detail": [NOT_YOURS_TO_ANSWER]})


@transaction.atomic
def meeting_counter(*, meeting: Meeting, by: Attendee, starts: list[datetime]) -> Meeting:
    """The one who was asked proposes other slots; then the first one answers."""
    meeting = _locked(meeting, by)
    _awaiting(meeting, by)
    slots = _check_slots(meeting.event, by, _other(meeting, by), starts)
    meeting.slots.all().delete()
    MeetingSlot.objects.bulk_create([MeetingSlot(meeting=meeting, starts_at=at) for at in slots])
    meeting.proposed_by = by
    meeting.save(update_fields=["proposed_by", "updated_at"])
    notifications.meeting_requested(meeting)
    return meeting


@transaction.atomic
def meeting_accept(*, meeting: Meeting, by: Attendee, start: datetime) -> Meeting:
    """Book one of the proposed slots, with a free place when the event has places."""
    meeting = _locked(meeting, by)
    _awaiting(meeting, by)
    if not meeting.slots.filter(starts_at=start).exists():
        raise ValidationError({"starts_at": [NOT_AMONG_PROPOSED.format(at=start.isoformat())]})
    event = meeting.event
    people = [meeting.requester, meeting.recipient]
    if start <= timezone.now() or start in _busy(event, people, [start]):
        raise MeetingConflict(NOT_FREE.format(at=start.isoformat()))
    end = start + slot_length(event)
    place = None
    if event.meeting_places.exists():
        held = _places_taken(event, start, end)
        place = MeetingPlace.objects.filter(event=event).exclude(pk__in=held).order_by("name", "pk").first()
        if place is None:
            raise MeetingConflict(NO_PLACE)
    holds = [MeetingHold(meeting=meeting, attendee=p, starts_at=start, ends_at=end) for p in people]
    if place is not None:
        holds.append(MeetingHold(meeting=meeting, place=place, starts_at=start, ends_at=end))
    try:
        with transaction.atomic():
            MeetingHold.objects.bulk_create(holds)
    except IntegrityError as exc:
        # Another booking of one of the two, or of the place, committed first at an overlapping time.
        raise MeetingConflict(TAKEN) from exc
    meeting.status = MeetingStatus.BOOKED
    meeting.starts_at, meeting.ends_at, meeting.place = start, end, place
    meeting.save(update_fields=["status", "starts_at", "ends_at", "place", "updated_at"])
    meeting.slots.all().delete()
    webhooks.meeting_booked(meeting=meeting)
    notifications.meeting_booked(meeting)
    return meeting


@transaction.atomic
def meeting_decline(*, meeting: Meeting, by: Attendee) -> Meeting:
    meeting = _locked(meeting, by)
    _awaiting(meeting, by)
    meeting.status = MeetingStatus.DECLINED
    meeting.save(update_fields=["status", "updated_at"])
    meeting.slots.all().delete()
    return meeting


@transaction.atomic
def meeting_cancel(*, meeting: Meeting, by: Attendee) -> Meeting:
    """Either of the two cancels a booked meeting (its time and place are free again), or the
    proposer withdraws an open request."""
    meeting = _locked(meeting, by)
    if meeting.status == MeetingStatus.PROPOSED and by.pk != meeting.proposed_by_id:
        raise ValidationError({"detail": [NOT_YOURS_TO_ANSWER]})
    if meeting.status not in (MeetingStatus.PROPOSED, MeetingStatus.BOOKED):
        raise MeetingConflict(NOT_CANCELLABLE.format(status=meeting.get_status_display().lower()))
    meeting.status = MeetingStatus.CANCELLED
    meeting.save(update_fields=["status", "updated_at"])
    meeting.holds.all().delete()
    meeting.slots.all().delete()
    return meeting


@transaction.atomic
def meeting_check_in(*, meeting: Meeting, by: Attendee, now: datetime | None = None) -> Meeting:
    """`by` is at the meeting: checked in at the table, or joined the virtual table's link through
    us. Open from CHECK_IN_EARLY before the start to the end; once both are in, the meeting is held.
    Checking in twice changes nothing."""
    now = now or timezone.now()
    meeting = _locked(meeting, by)
    if meeting.status != MeetingStatus.BOOKED:
        raise MeetingConflict(NOT_BOOKED.format(status=meeting.get_status_display().lower()))
    assert meeting.starts_at is not None and meeting.ends_at is not None  # booked meetings have their time
    if now < meeting.starts_at - CHECK_IN_EARLY:
        raise ValidationError({"detail": [TOO_EARLY.format(minutes=int(CHECK_IN_EARLY.total_seconds() // 60))]})
    if now > meeting.ends_at:
        raise ValidationError({"detail": [TOO_LATE]})
    field = "requester_checked_in_at" if by.pk == meeting.requester_id else "recipient_checked_in_at"
    if getattr(meeting, field) is not None:
        return meeting
    setattr(meeting, field, now)
    changed = [field, "updated_at"]
    if meeting.requester_checked_in_at and meeting.recipient_checked_in_at:
        meeting.held_at = now
        changed.append("held_at")
    meeting.save(update_fields=changed)
    return meeting


def meeting_ics(meeting: Meeting) -> bytes:
    """The meeting as an iCalendar file: a booked meeting to add, a cancelled one to remove."""
    cancelled = meeting.status == MeetingStatus.CANCELLED
    cal = Calendar()
    cal.add("prodid", "-//Attendee matchmaking//Meetings//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "PUBLISH")
    entry = CalendarEvent()
    entry.add("uid", f"meeting-{meeting.pk}@{meeting.event.slug}.matchmaking")
    entry.add("dtstamp", meeting.updated_at)
    entry.add("sequence", 1 if cancelled else 0)
    entry.add("dtstart", meeting.starts_at)
    entry.add("dtend", meeting.ends_at)
    entry.add("summary", f"{meeting.requester.display_name} and {meeting.recipient.display_name}")
    place = meeting.place
    if place is not None:
        entry.add("location", place.url or place.name)
        if place.url:
            entry.add("url", place.url)
    entry.add(
        "description", f"1:1 meeting at {meeting.event.name}." + (f"\n{meeting.message}" if meeting.message else "")
    )
    entry.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    cal.add_component(entry)
    return cal.to_ical()
