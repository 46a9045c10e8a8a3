"""The attendee-facing actions on facts: connection requests and answers, blocks, not-relevant
marks, consents, the widget's token and content views. Every action goes through a service of
`events.services`; the apps that derive data from the facts (recommendations) listen, so the very
next suggestions response already reflects it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import Http404
from django.templatetags.static import static
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from events import services
from events.api.auth import (
    ATTENDEE_TOKEN_MAX_AGE,
    ApiKeyAuthentication,
    ApiKeyUser,
    AttendeeTokenAuthentication,
    attendee_token_issue,
)
from events.api.permissions import attendee_for_caller
from events.api.serializers import (
    ConnectionListQuerySerializer,
    ConnectionOutputSerializer,
    ConnectionRequestInputSerializer,
    ConsentsSerializer,
    ContentViewInputSerializer,
    TargetInputSerializer,
    WidgetTokenOutputSerializer,
)
from events.enums import InteractionType
from events.ingestion import ingest_payload
from events.models import Attendee, Connection

UNKNOWN_ATTENDEE = "No attendee {external_id!r} in this event."


TOKEN_NEEDS_API_KEY = "Attendee tokens are issued to the event's platform: authenticate with its API key."


CONNECTION_NOT_FOUND = "No such connection for this attendee."


def _drf_error(exc: DjangoValidationError) -> ValidationError:
    if hasattr(exc, "error_dict"):
        return ValidationError(exc.message_dict)
    return ValidationError({"detail": exc.messages})


def other_attendee(attendee: Attendee, external_id: str, field: str) -> Attendee:
    other = Attendee.objects.filter(event_id=attendee.event_id, external_id=external_id).first()
    if other is None:
        raise ValidationError({field: [UNKNOWN_ATTENDEE.format(external_id=external_id)]})
    other.event = attendee.event
    return other


class AttendeeView(APIView):
    """A view acting as the attendee of the URL. Writes need the attendee (or the platform's key);
    reads are also open to the event's organizers."""

    # The widget's token is accepted here, and only here: it speaks for one attendee, not an org.
    authentication_classes = [ApiKeyAuthentication, AttendeeTokenAuthentication, SessionAuthentication]

    def attendee(self, *, write: bool = True) -> Attendee:
        return attendee_for_caller(
            self.request, event_slug=self.kwargs["event"], external_id=self.kwargs["external_id"], write=write
        )


def _connections_of(attendee: Attendee):
    """The attendee's connections, both ways (what the connection endpoints may read or act on)."""
    return Connection.objects.select_related("requester", "recipient").filter(
        Q(requester=attendee) | Q(recipient=attendee), event_id=attendee.event_id
    )


def _connection_or_404(attendee: Attendee, connection_id: int) -> Connection:
    connection = _connections_of(attendee).filter(pk=connection_id).first()
    if connection is None:
        raise Http404(CONNECTION_NOT_FOUND)
    return connection


class ConnectionRequestView(AttendeeView):
    @extend_schema(parameters=[ConnectionListQuerySerializer], responses=ConnectionOutputSerializer(many=True))
    def get(self, request, event, external_id):
        """The attendee's connections, both ways, newest first (`direction`: incoming or outgoing);
        `?status=` keeps one status."""
        attendee = self.attendee(write=False)
        query = ConnectionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = _connections_of(attendee)
        if query.validated_data.get("status"):
            rows = rows.filter(status=query.validated_data["status"])
        data = ConnectionOutputSerializer(rows, many=True, context={"attendee": attendee}).data
        return Response(data)

    @extend_schema(request=ConnectionRequestInputSerializer, responses={201: ConnectionOutputSerializer})
    def post(self, request, event, external_id):
        attendee = self.attendee()
        data = ConnectionRequestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        recipient = other_attendee(attendee, data.validated_data["recipient"], "recipient")
        try:
            connection = services.connection_request(
                requester=attendee, recipient=recipient, message=data.validated_data["message"]
            )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        data = ConnectionOutputSerializer(connection, context={"attendee": attendee}).data
        return Response(data, status=status.HTTP_201_CREATED)


class ConnectionWithdrawView(AttendeeView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, event, external_id, connection_id):
        """The requester takes back a request not answered yet (either may ask again later)."""
        attendee = self.attendee()
        connection = _connection_or_404(attendee, connection_id)
        try:
            services.connection_withdraw(connection=connection, requester=attendee)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConnectionRespondView(AttendeeView):
    accept = True

    @extend_schema(request=None, responses=ConnectionOutputSerializer)
    def post(self, request, event, external_id, connection_id):
        attendee = self.attendee()
        connection = _connection_or_404(attendee, connection_id)
        try:
            connection = services.connection_respond(connection=connection, responder=attendee, accept=self.accept)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        return Response(ConnectionOutputSerializer(connection, context={"attendee": attendee}).data)


class _ActOnOtherView(AttendeeView):
    """POST {"attendee": <external id>}: the attendee of the URL acts on another attendee of the
    event through one service (`act`), which refuses links across events and to oneself."""

    def act(self, attendee: Attendee, other: Attendee) -> None:
        raise NotImplementedError

    def post(self, request, event, external_id):
        attendee = self.attendee()
        data = TargetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        other = other_attendee(attendee, data.validated_data["attendee"], "attendee")
        try:
            self.act(attendee, other)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        return Response(status=status.HTTP_201_CREATED)


@extend_schema_view(
    post=extend_schema(
        request=TargetInputSerializer,
        responses={201: None},
        description="Block another attendee: neither is suggested to the other again, and no request passes.",
    )
)
class BlockView(_ActOnOtherView):
    def act(self, attendee: Attendee, other: Attendee) -> None:
        services.block_create(blocker=attendee, blocked=other)


@extend_schema_view(
    post=extend_schema(
        request=TargetInputSerializer,
        responses={201: None},
        description="Never suggest this person to this attendee again (one direction, unlike a block).",
    )
)
class NotRelevantView(_ActOnOtherView):
    def act(self, attendee: Attendee, other: Attendee) -> None:
        services.not_relevant_create(attendee=attendee, target=other)


class _UndoOnOtherView(AttendeeView):
    """DELETE .../<other>/: the attendee of the URL takes back what they did to another attendee
    (`undo` returns False when there was nothing to take back: 404)."""

    not_found = ""

    def undo(self, attendee: Attendee, other: Attendee) -> bool:
        raise NotImplementedError

    @extend_schema(request=None, responses={204: None, 404: None})
    def delete(self, request, event, external_id, other):
        attendee = self.attendee()
        target = Attendee.objects.filter(event_id=attendee.event_id, external_id=other).first()
        if target is None or not self.undo(attendee, target):
            raise Http404(self.not_found.format(external_id=other))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UnblockView(_UndoOnOtherView):
    """Lift a block (the widget's undo): both may be suggested to each other again."""

    not_found = "This attendee has not blocked {external_id!r}."

    def undo(self, attendee: Attendee, other: Attendee) -> bool:
        return services.block_delete(blocker=attendee, blocked=other)


class NotRelevantUndoView(_UndoOnOtherView):
    """Take back a "not relevant" mark (the widget's undo)."""

    not_found = "This attendee has not marked {external_id!r} as not relevant."

    def undo(self, attendee: Attendee, other: Attendee) -> bool:
        return services.not_relevant_delete(attendee=attendee, target=other)


class ConsentsView(AttendeeView):
    @extend_schema(responses=ConsentsSerializer)
    def get(self, request, event, external_id):
        return Response(ConsentsSerializer(self.attendee(write=False)).data)

    @extend_schema(request=ConsentsSerializer, responses=ConsentsSerializer)
    def patch(self, request, event, external_id):
        attendee = self.attendee()
        data = ConsentsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attendee = services.attendee_set_consents(attendee=attendee, **data.validated_data)
        return Response(ConsentsSerializer(attendee).data)


class WidgetTokenView(AttendeeView):
    @extend_schema(request=None, responses={201: WidgetTokenOutputSerializer})
    def post(self, request, event, external_id):
        """A signed, expiring token for the embeddable widget of this attendee (API key only).
        Embed: `<script src="{widget_url}" data-event="{event}" data-attendee="{external_id}"
        data-token="{token}"></script>`."""
        if not isinstance(request.user, ApiKeyUser):
            raise PermissionDenied(TOKEN_NEEDS_API_KEY)
        attendee = self.attendee()
        return Response(
            {
                "token": attendee_token_issue(attendee=attendee),
                "expires_in": ATTENDEE_TOKEN_MAX_AGE,
                "widget_url": request.build_absolute_uri(static("matchmaking/widget.js")),
                "websocket_path": f"/ws/events/{attendee.event.slug}/suggestions/",
            },
            status=status.HTTP_201_CREATED,
        )


class ContentViewedView(AttendeeView):
    @extend_schema(request=ContentViewInputSerializer, responses={200: None})
    def post(self, request, event, external_id):
        """The attendee watched a content item for `seconds` (sent by the content page when it is
        left). Recorded through ingestion like any interaction; retries are idempotent."""
        attendee = self.attendee()
        data = ContentViewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = {
            "client_event_id": data.validated_data["client_event_id"],
            "attendee_id": attendee.external_id,
            "context_kind": "content",
            "context_id": data.validated_data["content"],
            "type": InteractionType.VIEW_CONTENT,
            "value": data.validated_data["seconds"],
            "occurred_at": timezone.now().isoformat(),
        }
        result = ingest_payload(event=attendee.event, payload=[item])[0]
        if result.status == "rejected":
            raise ValidationError({"content": [result.reason]})
        return Response({"status": result.status})
