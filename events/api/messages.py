"""A mutual connection's message thread over REST (`events.messages`): read what is newer than the
number you hold, and write. The same messages are pushed live on the widget's WebSocket."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Max
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from events import messages
from events.api.attendees import AttendeeView, _drf_error
from events.api.serializers import (
    MessageInputSerializer,
    MessageOutputSerializer,
    MessageQuerySerializer,
    ThreadOutputSerializer,
)
from events.models import Message

NO_THREAD = "No such conversation for this attendee."


class ThreadView(AttendeeView):
    throttle_scope = "attendee"

    def _thread(self, attendee, connection_id):
        try:
            return messages.thread_for(attendee=attendee, connection_id=connection_id)
        except messages.NoThread as exc:
            raise Http404(NO_THREAD) from exc

    @extend_schema(parameters=[MessageQuerySerializer], responses=ThreadOutputSerializer)
    def get(self, request, event, external_id, connection_id):
        """The thread's messages numbered after `?after=` (oldest first, at most 200); `last` is the
        thread's highest number, so a client knows whether to ask again."""
        attendee = self.attendee(write=False)
        query = MessageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        connection = self._thread(attendee, connection_id)
        rows = messages.thread_messages(connection=connection, after=query.validated_data["after"])
        last = Message.objects.filter(connection=connection).aggregate(n=Max("number"))["n"] or 0
        return Response(
            {"thread": connection.pk, "messages": [messages.message_payload(m) for m in rows], "last": last}
        )

    @extend_schema(request=MessageInputSerializer, responses={201: MessageOutputSerializer})
    def post(self, request, event, external_id, connection_id):
        """Write in the thread of an accepted connection (either of the two; never across a block)."""
        attendee = self.attendee()
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        connection = self._thread(attendee, connection_id)
        try:
            message = messages.message_send(connection=connection, sender=attendee, body=data.validated_data["body"])
        except messages.NoThread as exc:
            raise Http404(NO_THREAD) from exc
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        return Response(messages.message_payload(message), status=status.HTTP_201_CREATED)
