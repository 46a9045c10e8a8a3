"""Helpers shared by the recommendation commands."""

from django.core.management.base import CommandError

from events.models import Event

UNKNOWN_EVENT = "No event with slug {slug!r}."


def get_event(slug: str) -> Event:
    event = Event.objects.filter(slug=slug).first()
    if event is None:
        raise CommandError(UNKNOWN_EVENT.format(slug=slug))
    return event
