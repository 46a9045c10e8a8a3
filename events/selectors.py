"""Reads that matter, scoped to what the caller may see."""

from django.db.models import QuerySet

from .models import Event, Organization


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
