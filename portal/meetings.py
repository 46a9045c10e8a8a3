"""The attendee's meeting pages: the meetings list (to answer, waiting, booked, closed), the slot
picker that proposes (or proposes other times), the answers, and the calendar file. Every action
goes through `events.meetings`, as the REST API's do; times render in the page's zone."""

from __future__ import annotations

import contextlib
from datetime import datetime
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_POST

from events import meetings
from events.enums import MeetingStatus
from events.models import Attendee, Meeting
from matchmaking_site.sentences import localize

from .views import _page, attendee_page

NO_SUCH_MEETING = gettext_noop("No such meeting of yours.")
NO_SUCH_PERSON = gettext_noop("No such attendee in this event.")
BAD_SLOT = gettext_noop("That is not a time this page offered; pick one of the slots.")
ACTIONS = ("accept", "decline", "cancel", "check-in")


def _mine(attendee: Attendee):
    return (
        Meeting.objects.filter(Q(requester=attendee) | Q(recipient=attendee), event_id=attendee.event_id)
        .select_related("requester", "recipient", "place")
        .prefetch_related("slots")
    )


def _meeting(attendee: Attendee, meeting_id: int) -> Meeting:
    meeting = _mine(attendee).filter(pk=meeting_id).first()
    if meeting is None:
        raise Http404(_(NO_SUCH_MEETING))
    return meeting


def _list_url(attendee: Attendee, **query) -> str:
    url = reverse("portal:meetings", kwargs={"event": attendee.event.slug})
    return f"{url}?{urlencode(query)}" if query else url


@attendee_page
def meetings_page(request: HttpRequest, attendee: Attendee) -> HttpResponse:
    rows = list(_mine(attendee).order_by("starts_at", "-created_at"))
    for m in rows:
        m.other = m.recipient if m.requester_id == attendee.pk else m.requester  # for the template
        mine = m.requester_checked_in_at if m.requester_id == attendee.pk else m.recipient_checked_in_at
        m.me_checked_in = mine is not None
    proposed = [m for m in rows if m.status == MeetingStatus.PROPOSED]
    return _page(
        request,
        attendee,
        "portal/meetings.html",
        nav="meetings",
        to_answer=[m for m in proposed if m.proposed_by_id != attendee.pk],
        waiting=[m for m in proposed if m.proposed_by_id == attendee.pk],
        booked=[m for m in rows if m.status == MeetingStatus.BOOKED],
        closed=[m for m in rows if m.status in (MeetingStatus.DECLINED, MeetingStatus.CANCELLED)][:20],
        error=request.GET.get("error", ""),
        done=request.GET.get("done", ""),
    )


def _slots_posted(values: list[str]) -> list[datetime]:
    out = []
    for value in values:
        try:
            at = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(BAD_SLOT) from exc
        if at.tzinfo is None:
            raise ValidationError(BAD_SLOT)
        out.append(at)
    return out


@attendee_page
def meeting_new(request: HttpRequest, attendee: Attendee, other: str) -> HttpResponse:
    """Pick free slots with `other` and send them: a new request, or (with `?meeting=`) other times
    for a request one was asked."""
    person = Attendee.objects.filter(event_id=attendee.event_id, external_id=other).first()
    if person is None:
        raise Http404(_(NO_SUCH_PERSON))
    person.event = attendee.event
    counter = None
    if request.GET.get("meeting", "").isdigit():
        counter = _meeting(attendee, int(request.GET["meeting"]))
    error = ""
    if request.method == "POST":
        try:
            starts = _slots_posted(request.POST.getlist("slot"))
            if counter is not None:
                meetings.meeting_counter(meeting=counter, by=attendee, starts=starts)
            else:
                meetings.meeting_propose(
                    requester=attendee, recipient=person, starts=starts, message=request.POST.get("message", "")[:500]
                )
            return redirect(_list_url(attendee, done=_("Sent to %(name)s.") % {"name": person.display_name}))
        except ValidationError as exc:
            error = " ".join(localize(m) for m in exc.messages)
        except meetings.MeetingConflict as exc:
            error = localize(str(exc))
    return _page(
        request,
        attendee,
        "portal/meeting_new.html",
        nav="meetings",
        person=person,
        counter=counter,
        slots=meetings.free_slots(attendee.event, attendee, person, limit=24),
        slot_minutes=attendee.event.meeting_slot_minutes,
        error=error,
    )


@require_POST
@attendee_page
def meeting_act(request: HttpRequest, attendee: Attendee, meeting_id: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(_(NO_SUCH_MEETING))
    meeting = _meeting(attendee, meeting_id)
    try:
        if action == "accept":
            starts = _slots_posted(request.POST.getlist("slot")[:1])
            if not starts:
                raise ValidationError(BAD_SLOT)
            meetings.meeting_accept(meeting=meeting, by=attendee, start=starts[0])
        elif action == "decline":
            meetings.meeting_decline(meeting=meeting, by=attendee)
        elif action == "check-in":
            meetings.meeting_check_in(meeting=meeting, by=attendee)
        else:
            meetings.meeting_cancel(meeting=meeting, by=attendee)
    except ValidationError as exc:
        return redirect(_list_url(attendee, error=" ".join(localize(m) for m in exc.messages)))
    except meetings.MeetingConflict as exc:
        return redirect(_list_url(attendee, error=localize(str(exc))))
    return redirect(_list_url(attendee))


@attendee_page
def meeting_join(request: HttpRequest, attendee: Attendee, meeting_id: int) -> HttpResponse:
    """A virtual table's link, through us: joining it at the time checks the attendee in, then
    the browser goes on to the link. Outside the check-in window it only goes on."""
    meeting = _meeting(attendee, meeting_id)
    if meeting.place is None or not meeting.place.url:
        raise Http404(_(NO_SUCH_MEETING))
    # Too early, over, or cancelled: the link still opens, and nothing is recorded.
    with contextlib.suppress(ValidationError, meetings.MeetingConflict):
        meetings.meeting_check_in(meeting=meeting, by=attendee)
    return redirect(meeting.place.url)


@attendee_page
def meeting_calendar(request: HttpRequest, attendee: Attendee, meeting_id: int) -> HttpResponse:
    meeting = _meeting(attendee, meeting_id)
    if meeting.starts_at is None:
        raise Http404(_(NO_SUCH_MEETING))
    meeting.event = attendee.event
    response = HttpResponse(meetings.meeting_ics(meeting), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="meeting-{meeting.pk}.ics"'
    return response
