"""1:1 meetings over REST, acting as the attendee of the URL (the platform's key, the attendee's
widget token or their login), through `events.meetings`: free slots with someone, propose, answer
(accept one slot, decline, propose others), cancel, and the calendar file. A request that lost to
another one (the slot was just booked, the meeting was answered) is a 409 saying what happened."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from events import meetings
from events.api.attendees import AttendeeView, _drf_error, other_attendee
from events.api.serializers import (
    MeetingAcceptInputSerializer,
    MeetingOutputSerializer,
    MeetingProposeInputSerializer,
    MeetingSlotsInputSerializer,
    MeetingSlotsQuerySerializer,
)
from events.models import Attendee, Meeting

MEETING_NOT_FOUND = "No such meeting for this attendee."
NO_CALENDAR = "This meeting was never booked: it has no calendar entry."
CONFLICT = OpenApiResponse(description="Lost to another request (the slot was just booked, or it was answered).")


def _meetings_of(attendee: Attendee):
    return (
        Meeting.objects.select_related("event", "requester", "recipient", "place")
        .prefetch_related("slots")
        .filter(Q(requester=attendee) | Q(recipient=attendee), event_id=attendee.event_id)
    )


def _meeting_or_404(attendee: Attendee, meeting_id: int) -> Meeting:
    meeting = _meetings_of(attendee).filter(pk=meeting_id).first()
    if meeting is None:
        raise Http404(MEETING_NOT_FOUND)
    return meeting


def _answer(attendee: Attendee, meeting: Meeting, code: int = status.HTTP_200_OK) -> Response:
    fresh = _meeting_or_404(attendee, meeting.pk)
    return Response(MeetingOutputSerializer(fresh, context={"attendee": attendee}).data, status=code)


class MeetingBaseView(AttendeeView):
    """The services' refusals as HTTP: 400 with the field's message, 409 for a lost race."""

    def handle_exception(self, exc):
        if isinstance(exc, meetings.MeetingConflict):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, DjangoValidationError):
            exc = _drf_error(exc)
        return super().handle_exception(exc)


class MeetingListView(MeetingBaseView):
    @extend_schema(responses=MeetingOutputSerializer(many=True))
    def get(self, request, event, external_id):
        """The attendee's meetings, both ways, newest first."""
        attendee = self.attendee(write=False)
        rows = _meetings_of(attendee)
        return Response(MeetingOutputSerializer(rows, many=True, context={"attendee": attendee}).data)

    @extend_schema(request=MeetingProposeInputSerializer, responses={201: MeetingOutputSerializer, 409: CONFLICT})
    def post(self, request, event, external_id):
        """Propose a meeting with up to 10 free slots (GET .../meetings/slots/). Slots that are not
        in the meeting hours, or not free for both, are refused one by one (400)."""
        attendee = self.attendee()
        data = MeetingProposeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        other = other_attendee(attendee, data.validated_data["recipient"], "recipient")
        meeting = meetings.meeting_propose(
            requester=attendee,
            recipient=other,
            starts=data.validated_data["slots"],
            message=data.validated_data["message"],
        )
        return _answer(attendee, meeting, status.HTTP_201_CREATED)


class MeetingSlotsView(MeetingBaseView):
    @extend_schema(parameters=[MeetingSlotsQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, event, external_id):
        """The next free slots for the attendee and `?attendee=` (meeting hours, neither booked,
        no planned session of either, a place free): `{"slot_minutes": 15, "slots": [...]}`."""
        attendee = self.attendee(write=False)
        query = MeetingSlotsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        other = other_attendee(attendee, query.validated_data["attendee"], "attendee")
        starts = meetings.free_slots(attendee.event, attendee, other, limit=query.validated_data["limit"])
        return Response(
            {
                "slot_minutes": attendee.event.meeting_slot_minutes,
                "slots": [s.isoformat().replace("+00:00", "Z") for s in starts],
            }
        )


class MeetingAcceptView(MeetingBaseView):
    @extend_schema(request=MeetingAcceptInputSerializer, responses={200: MeetingOutputSerializer, 409: CONFLICT})
    def post(self, request, event, external_id, meeting_id):
        """Book one of the proposed slots (the one who was asked). Exactly one of two accepts of
        one slot, or two bookings of one person at one time, wins; the other gets 409."""
        attendee = self.attendee()
        meeting = _meeting_or_404(attendee, meeting_id)
        data = MeetingAcceptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        meetings.meeting_accept(meeting=meeting, by=attendee, start=data.validated_data["starts_at"])
        return _answer(attendee, meeting)


class MeetingCounterView(MeetingBaseView):
    @extend_schema(request=MeetingSlotsInputSerializer, responses={200: MeetingOutputSerializer, 409: CONFLICT})
    def post(self, request, event, external_id, meeting_id):
        """Propose other slots instead (the one who was asked); then the other one answers."""
        attendee = self.attendee()
        meeting = _meeting_or_404(attendee, meeting_id)
        data = MeetingSlotsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        meetings.meeting_counter(meeting=meeting, by=attendee, starts=data.validated_data["slots"])
        return _answer(attendee, meeting)


class MeetingDeclineView(MeetingBaseView):
    @extend_schema(request=None, responses={200: MeetingOutputSerializer, 409: CONFLICT})
    def post(self, request, event, external_id, meeting_id):
        attendee = self.attendee()
        meeting = _meeting_or_404(attendee, meeting_id)
        meetings.meeting_decline(meeting=meeting, by=attendee)
        return _answer(attendee, meeting)


class MeetingCancelView(MeetingBaseView):
    @extend_schema(request=None, responses={200: MeetingOutputSerializer, 409: CONFLICT})
    def post(self, request, event, external_id, meeting_id):
        """Cancel a booked meeting (either of the two: its time and place are free again), or
        withdraw an open request (the one who proposed)."""
        attendee = self.attendee()
        meeting = _meeting_or_404(attendee, meeting_id)
        meetings.meeting_cancel(meeting=meeting, by=attendee)
        return _answer(attendee, meeting)


class MeetingCheckInView(MeetingBaseView):
    @extend_schema(request=None, responses={200: MeetingOutputSerializer, 409: CONFLICT})
    def post(self, request, event, external_id, meeting_id):
        """The attendee is at the meeting (from 10 minutes before its start to its end). Once both
        checked in, the meeting is held (`held_at`)."""
        attendee = self.attendee()
        meeting = _meeting_or_404(attendee, meeting_id)
        meetings.meeting_check_in(meeting=meeting, by=attendee)
        return _answer(attendee, meeting)


class MeetingCalendarView(MeetingBaseView):
    @extend_schema(
        responses={
            (200, "text/calendar"): OpenApiResponse(response=OpenApiTypes.BINARY, description="An iCalendar file"),
            404: None,
        }
    )
    def get(self, request, event, external_id, meeting_id):
        """The meeting's .ics file, the same for both: add it (booked) or remove it (cancelled)."""
        attendee = self.attendee(write=False)
        meeting = _meeting_or_404(attendee, meeting_id)
        if meeting.starts_at is None:
            raise Http404(NO_CALENDAR)
        response = HttpResponse(meetings.meeting_ics(meeting), content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="meeting-{meeting.pk}.ics"'
        return response
