"""Which events and attendees a caller may touch. The client never supplies the tenant: it is
derived here.

Who may act as an attendee: the organization's API key (the platform acts for its attendees),
the attendee themselves (a logged-in user linked by `Attendee.user`, or the bearer of a widget
token issued for that attendee of that event), and, for reading only, an organizer of the event.
Anything else, including another organization's event, is a 404: never a 403 that would confirm
the event or attendee exists."""

from django.db.models import QuerySet
from django.http import Http404

from ..models import Attendee, Event
from ..selectors import events_for_user
from .auth import ApiKeyUser, AttendeeTokenUser


def events_for_caller(user) -> QuerySet[Event]:
    if isinstance(user, ApiKeyUser):
        return Event.objects.select_related("organization").filter(organization=user.organization)
    return events_for_user(user=user)


NOT_FOUND = "No such attendee in this event."
EVENT_NOT_FOUND = "No such event."


def attendee_for_caller(request, *, event_slug: str, external_id: str, write: bool) -> Attendee:
    """The attendee the request acts as, with its event, in one query."""
    # No ORDER BY (the model's default ordering would sort a one-row result): this runs on every
    # request, and building the ordering was a tenth of its time.
    qs = Attendee.objects.select_related("event").filter(event__slug=event_slug, external_id=external_id).order_by()
    user = request.user
    if isinstance(user, ApiKeyUser):
        attendee = _one(qs.filter(event__organization_id=user.organization.pk))
    elif isinstance(user, AttendeeTokenUser):
        attendee = _one(qs.filter(pk=user.attendee_id, event_id=user.event_id))
    else:
        attendee = _one(qs.filter(user=user))
        if attendee is None and not write:
            attendee = _one(qs.filter(event__in=events_for_user(user=user)))
    if attendee is None:
        # Only on the way to a 404: say which of the two the caller got wrong. An event the caller
        # may not see is "no such event", exactly like one that does not exist.
        raise Http404(NOT_FOUND if _event_visible(user, event_slug) else EVENT_NOT_FOUND)
    return attendee


def _event_visible(user, event_slug: str) -> bool:
    if isinstance(user, AttendeeTokenUser):
        return Event.objects.filter(pk=user.event_id, slug=event_slug).exists()
    return events_for_caller(user).filter(slug=event_slug).exists()


def _one(qs) -> Attendee | None:
    rows = list(qs[:1])
    return rows[0] if rows else None
