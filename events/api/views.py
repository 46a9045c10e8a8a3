from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from matchmaking_site.jsonlimits import BoundedJSONParser

from ..ingestion import ACCEPTED, DUPLICATE, MAX_BATCH, REJECTED, ingest_payload
from ..models import Attendee
from ..questionnaire import questionnaire_hydrate
from .permissions import events_for_caller
from .serializers import (
    EventOutputSerializer,
    InteractionBatchInputSerializer,
    InteractionBatchOutputSerializer,
    QuestionnaireHydrateInputSerializer,
    QuestionnaireHydrateOutputSerializer,
)

ENVELOPE_NOT_OBJECT = "Expected a JSON object with an '{envelope}' list."
BATCH_REQUIRED = "This field is required."
BATCH_NOT_LIST = "Expected a list of {envelope}."
BATCH_EMPTY = "Send at least one item."
BATCH_TOO_LARGE = "A batch holds at most {limit} {envelope}; this one has {count}. Split it."
BODY_TOO_LARGE = "The request body is larger than {limit} bytes. Send smaller batches."


def batch_items(request, envelope: str) -> list | Response:
    """The list under `envelope` in a batch request's JSON object, or the 400 / 413 response that
    says what is wrong with the envelope (an item's own faults are the item's status, not this)."""
    try:
        data = request.data
    except RequestDataTooBig:
        return Response(
            {"non_field_errors": [BODY_TOO_LARGE.format(limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)]},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if not isinstance(data, dict):
        return Response(
            {"non_field_errors": [ENVELOPE_NOT_OBJECT.format(envelope=envelope)]}, status=status.HTTP_400_BAD_REQUEST
        )
    items = data.get(envelope)
    if items is None:
        return Response({envelope: [BATCH_REQUIRED]}, status=status.HTTP_400_BAD_REQUEST)
    if not isinstance(items, list):
        return Response({envelope: [BATCH_NOT_LIST.format(envelope=envelope)]}, status=status.HTTP_400_BAD_REQUEST)
    if not items:
        return Response({envelope: [BATCH_EMPTY]}, status=status.HTTP_400_BAD_REQUEST)
    if len(items) > MAX_BATCH:
        return Response(
            {envelope: [BATCH_TOO_LARGE.format(limit=MAX_BATCH, envelope=envelope, count=len(items))]},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return items


class EventListView(generics.ListAPIView):
    """Events of the caller's organization(s)."""

    serializer_class = EventOutputSerializer

    def get_queryset(self):
        return events_for_caller(self.request.user).order_by("slug")


class EventDetailView(generics.RetrieveAPIView):
    serializer_class = EventOutputSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "event"

    def get_queryset(self):
        # Another organization's event is a 404, never a 403 that would confirm it exists.
        return events_for_caller(self.request.user)


class InteractionBatchView(APIView):
    """Record a batch of interactions from an external platform."""

    parser_classes = [BoundedJSONParser]
    throttle_scope = "ingest"

    @extend_schema(
        operation_id="interactions_batch_create",
        request=InteractionBatchInputSerializer,
        responses={
            200: InteractionBatchOutputSerializer,
            400: OpenApiResponse(description="Unreadable envelope: not JSON, or no `interactions` list."),
            404: OpenApiResponse(description="No such event for this API key's organization."),
            413: OpenApiResponse(description=f"More than {MAX_BATCH} interactions, or a body over the size limit."),
            429: OpenApiResponse(description="Rate limit of this API key exceeded; retry after `Retry-After` s."),
        },
        description=(
            f"Up to {MAX_BATCH} interactions per request. Every item gets a status, in request order: "
            "`accepted`, `duplicate` (its `client_event_id` was recorded before: retries are safe and add "
            "no row) or `rejected` with a reason (unknown attendee or context, attendee of another event, "
            "timestamp outside the event window or in the future, negative value, wrong type...). One bad "
            "item never rejects the others; the response is 200 whenever the envelope is readable."
        ),
    )
    def post(self, request, event: str):
        # Another organization's event is a 404, never a 403 that would confirm it exists.
        event_obj = get_object_or_404(events_for_caller(request.user), slug=event)
        items = batch_items(request, "interactions")
        if isinstance(items, Response):
            return items
        results = ingest_payload(event=event_obj, payload=items)
        counts = {ACCEPTED: 0, DUPLICATE: 0, REJECTED: 0}
        for result in results:
            counts[result.status] += 1
        return Response({**counts, "results": [r.as_dict() for r in results]})


class QuestionnaireHydrateView(APIView):
    """Turn questionnaire answers into inferred interactions (idempotent)."""

    @extend_schema(
        operation_id="questionnaire_hydrate",
        request=QuestionnaireHydrateInputSerializer,
        responses={200: QuestionnaireHydrateOutputSerializer},
        description=(
            "Creates one `questionnaire` interaction (source `questionnaire`) per interest tag an attendee "
            "declared as interest, offer or seek, and per room they plan to attend; removes those of "
            "withdrawn answers. Call it after answers change; calling it twice adds nothing. Their weight "
            "in the model fades as the attendee's real interactions arrive."
        ),
    )
    def post(self, request, event: str):
        event_obj = get_object_or_404(events_for_caller(request.user), slug=event)
        serializer = QuestionnaireHydrateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        external_ids = serializer.validated_data.get("attendee_ids")
        attendee_ids = None
        if external_ids is not None:
            attendee_ids = list(
                Attendee.objects.filter(event=event_obj, external_id__in=external_ids).values_list("pk", flat=True)
            )
        stats = questionnaire_hydrate(event=event_obj, attendee_ids=attendee_ids)
        return Response({"created": stats.created, "removed": stats.removed, "unchanged": stats.unchanged})
