"""Reads that matter, scoped to what the caller may see."""

from collections.abc import Iterator

from django.db.models import QuerySet

from .enums import ContextKind
from .interchange import CsvInteraction, context_token
from .models import Event, Interaction, Organization


def organizations_for_user(*, user) -> QuerySet[Organization]:
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(organizers=user)


def events_for_user(*, user) -> QuerySet[Event]:
    """Events an organizer may see and change: those of their organizations (all for superusers)."""
    qs = Event.objects.select_related("organization")
    if user.is_superuser:
        return qs
    return qs.filter(organization__organizers=user).distinct()


def interactions_for_export(*, event: Event, qualifying_only: bool = False) -> Iterator[CsvInteraction]:
    """The event's interactions as Personalize CSV rows, oldest first, streamed from the database
    (server-side cursor) so that an export of millions of rows holds one chunk at a time."""
    qs = Interaction.objects.filter(event=event)
    if qualifying_only:
        qs = qs.filter(qualifies=True)
    rows = qs.order_by("occurred_at", "id").values_list(
        "room__external_id",
        "content__external_id",
        "interest__slug",
        "attendee__external_id",
        "occurred_at",
        "type",
        "value",
    )
    for room, content, interest, attendee, occurred_at, type_, value in rows.iterator(chunk_size=5000):
        if room is not None:
            token = context_token(ContextKind.ROOM, room)
        elif content is not None:
            token = context_token(ContextKind.CONTENT, content)
        else:
            token = context_token(ContextKind.INTEREST, interest)
        yield CsvInteraction(token, attendee, int(occurred_at.timestamp()), type_, value)
