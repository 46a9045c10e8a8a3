"""Who may act as an attendee: the organization's API key (the platform acts for its attendees),
the attendee themselves (a logged-in user linked by `Attendee.user`, or the bearer of a widget
token issued for that attendee of that event), and, for reading only, an
organizer of the event. Anything else, including another organization's event, is a 404: never a
403 that would confirm the event or attendee exists."""

from django.http import Http404
from rest_framework.request import Request

from events.api.auth import ApiKeyUser, AttendeeTokenUser
from events.models import Attendee
from events.selectors import events_for_user

NOT_FOUND = "No such attendee in this event."


def attendee_for_caller(request: Request, *, event_slug: str, external_id: str, write: bool) -> Attendee:
    """The attendee the request acts as, with its event, in one query."""
    qs = Attendee.objects.select_related("event").filter(event__slug=event_slug, external_id=external_id)
    user = request.user
    if isinstance(user, ApiKeyUser):
        attendee = qs.filter(event__organization_id=user.organization.pk).first()
    elif isinstance(user, AttendeeTokenUser):
        attendee = qs.filter(pk=user.attendee_id, event_id=user.event_id).first()
    else:
        attendee = qs.filter(user=user).first()
        if attendee is None and not write:
            attendee = qs.filter(event__in=events_for_user(user=user)).first()
    if attendee is None:
        raise Http404(NOT_FOUND)
    return attendee
