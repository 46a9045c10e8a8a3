"""Which events a caller may touch. The client never supplies the tenant: it is derived here."""

from django.db.models import QuerySet
from django.http import Http404

from ..models import Attendee, Event
from ..selectors import events_for_user
from .auth import ApiKeyUser


def events_for_caller(user) -> QuerySet[Event]:
    if isinstance(user, ApiKeyUser):
        return Event.objects.select_related("organization").filter(organization=user.organization)
    return events_for_user(user=user)


ATTENDEE_NOT_FOUND = "No such attendee in this event."


def attendee_for_caller(request, *, event_slug: str, external_id: str, write: bool):
    """The attendee a request acts as, with its event, in one query: the organization's API key
    (the platform acts for its attendees), the attendee themselves (a logged-in user linked by
    `Attendee.user`) and, for reading only, an organizer of the event. Anything else, including
    another organization's event, is a 404: never a 403 that would confirm the attendee exists."""
    qs = Attendee.objects.select_related("event").filter(event__slug=event_slug, external_id=external_id)
    user = request.user
    if isinstance(user, ApiKeyUser):
        attendee = qs.filter(event__organization_id=user.organization.pk).first()
    elif user.is_authenticated:
        attendee = qs.filter(user=user).first()
        if attendee is None and not write:
            attendee = qs.filter(event__in=events_for_user(user=user)).first()
    else:
        attendee = None
    if attendee is None:
        raise Http404(ATTENDEE_NOT_FOUND)
    return attendee
