"""The platform's facts over REST: bulk upserts of attendees, rooms and sessions, content and topics
by the ids the platform knows (`events.upserts`), so that a platform can register what its
interactions refer to without the admin or a CSV. Envelopes, limits and statuses as for
interaction batches: at most 500 items, 413 beyond, 400 for an unreadable envelope, a status per
item in request order, and another organization's event is a 404."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from matchmaking_site.jsonlimits import BoundedJSONParser

from .. import upserts
from ..ingestion import MAX_BATCH
from .permissions import events_for_caller
from .serializers import (
    AttendeeUpsertItemSerializer,
    ContentUpsertItemSerializer,
    ExternalIdUpsertOutputSerializer,
    InterestTagUpsertItemSerializer,
    RoomUpsertItemSerializer,
    SlugUpsertOutputSerializer,
)
from .views import batch_items

NOT_AN_OBJECT = "An item must be a JSON object."
MAX_REASON = 500  # characters of a rejection reason (a list field's errors add up)


def _reason(errors) -> str:
    """A serializer's errors as one line: "field: message; other: message"."""
    parts = []
    for name, messages in errors.items():
        if isinstance(messages, dict):  # a list field: index -> messages
            messages = [f"item {i}: {' '.join(map(str, m))}" for i, m in messages.items()]
        parts.append(f"{name}: {' '.join(map(str, messages))}")
    text = "; ".join(parts)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class UpsertView(APIView):
    """One kind of fact (`kind`), in a JSON object under `envelope`, items validated by `item`."""

    parser_classes = [BoundedJSONParser]
    throttle_scope = "ingest"
    kind: upserts.Kind
    envelope: str
    item: type[serializers.Serializer]

    def upsert(self, request, event: str) -> Response:
        event_obj = get_object_or_404(events_for_caller(request.user), slug=event)
        items = batch_items(request, self.envelope)
        if isinstance(items, Response):
            return items
        key = self.kind.key
        valid: list[dict] = []
        at: list[int] = []  # request index of each valid item
        refused: dict[int, upserts.UpsertResult] = {}
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                refused[index] = upserts.UpsertResult(index, None, upserts.REJECTED, NOT_AN_OBJECT)
                continue
            checked = self.item(data=raw)
            if not checked.is_valid():
                shown = raw.get(key)
                if not (isinstance(shown, str) and 0 < len(shown) <= 128 and "\x00" not in shown):
                    shown = None
                refused[index] = upserts.UpsertResult(index, shown, upserts.REJECTED, _reason(checked.errors))
                continue
            valid.append(checked.validated_data)
            at.append(index)
        done = upserts.upsert(event=event_obj, kind=self.kind, items=valid) if valid else []
        results = dict(refused)
        for r in done:
            results[at[r.index]] = upserts.UpsertResult(at[r.index], r.key, r.status, r.reason)
        ordered = [results[i] for i in range(len(items))]
        counts = dict.fromkeys(upserts.STATUSES, 0)
        for r in ordered:
            counts[r.status] += 1
        return Response({**counts, "results": [r.as_dict(key) for r in ordered]})


def _described(view: type[UpsertView], *, noun: str, output, extra: str) -> type[UpsertView]:
    envelope_serializer = type(
        f"{view.__name__}Input",
        (serializers.Serializer,),
        {
            view.envelope: view.item(  # type: ignore[call-arg]
                many=True, max_length=MAX_BATCH, help_text=f"1 to {MAX_BATCH} {noun}; more gets HTTP 413."
            )
        },
    )

    def post(self, request, event: str) -> Response:
        return self.upsert(request, event)

    view.post = extend_schema(  # type: ignore[attr-defined]
        operation_id=f"{view.envelope}_upsert",
        request=envelope_serializer,
        responses={
            200: output,
            400: OpenApiResponse(description=f"Unreadable envelope: not JSON, or no `{view.envelope}` list."),
            404: OpenApiResponse(description="No such event for this API key's organization."),
            413: OpenApiResponse(description=f"More than {MAX_BATCH} {noun}, or a body over the size limit."),
            429: OpenApiResponse(description="Rate limit of this API key exceeded; retry after `Retry-After` s."),
        },
        description=(
            f"Create or update up to {MAX_BATCH} {noun} by `{view.kind.key}`. Every item gets a status, in "
            "request order: `created`, `updated`, `unchanged` (sending the same item again writes nothing) or "
            "`rejected` with a reason. An item sets the fields it holds and leaves the others as they are; a "
            f"list replaces the whole set. {extra} One bad item never rejects the others."
        ),
    )(post)
    return view


class AttendeeUpsertView(UpsertView):
    kind, envelope, item = upserts.ATTENDEES, "attendees", AttendeeUpsertItemSerializer


class RoomUpsertView(UpsertView):
    kind, envelope, item = upserts.ROOMS, "rooms", RoomUpsertItemSerializer


class ContentUpsertView(UpsertView):
    kind, envelope, item = upserts.CONTENTS, "contents", ContentUpsertItemSerializer


class InterestTagUpsertView(UpsertView):
    kind, envelope, item = upserts.INTEREST_TAGS, "interest_tags", InterestTagUpsertItemSerializer


_described(
    AttendeeUpsertView,
    noun="attendees",
    output=ExternalIdUpsertOutputSerializer,
    extra="Topics are named by slug and rooms by external id, and must exist. New attendees take all three "
    "consents as true unless the item says otherwise. To delete one, erase them (DELETE .../attendees/{id}/).",
)
_described(
    RoomUpsertView,
    noun="rooms or sessions",
    output=ExternalIdUpsertOutputSerializer,
    extra="A session has `starts_at` and `ends_at` with their offsets. Topics must exist.",
)
_described(
    ContentUpsertView,
    noun="content items",
    output=ExternalIdUpsertOutputSerializer,
    extra="`room` names an existing room or session by external id. Topics must exist.",
)
_described(InterestTagUpsertView, noun="topics", output=SlugUpsertOutputSerializer, extra="")
