"""Reads that matter, scoped to what the caller may see."""

from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

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


def users_for_user(*, user) -> QuerySet:
    """Accounts an organizer may pick in a form (an organization's organizers, an attendee's
    login): their colleagues in their organizations, the accounts of their events' attendees, and
    themselves; every account for superusers. Another organization's people are not listed."""
    qs = get_user_model().objects.all()
    if user.is_superuser:
        return qs
    orgs = organizations_for_user(user=user)
    return qs.filter(
        Q(pk=user.pk) | Q(organizations__in=orgs) | Q(attendances__event__organization__in=orgs)
    ).distinct()


def tenant_choices(*, model, user) -> QuerySet | None:
    """The rows of `model` that `user` may pick in a form or filter, or None when `model` belongs
    to no organization (a choice list, a schedule). One rule for every tenant-owned model:
    organizations, events, and rows of an event or of an organization."""
    if model is Organization:
        return organizations_for_user(user=user)
    if model is Event:
        return events_for_user(user=user)
    if model is get_user_model():
        return users_for_user(user=user)
    fields = {f.name: f for f in model._meta.get_fields() if f.many_to_one}
    if "event" in fields and fields["event"].related_model is Event:
        qs = model._default_manager.all()
        return qs if user.is_superuser else qs.filter(event__in=events_for_user(user=user))
    if "organization" in fields and fields["organization"].related_model is Organization:
        qs = model._default_manager.all()
        return qs if user.is_superuser else qs.filter(organization__in=organizations_for_user(user=user))
    return None


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
