"""Which events a caller may touch. The client never supplies the tenant: it is derived here."""

from django.db.models import QuerySet

from ..models import Event
from ..selectors import events_for_user
from .auth import ApiKeyUser


def events_for_caller(user) -> QuerySet[Event]:
    if isinstance(user, ApiKeyUser):
        return Event.objects.select_related("organization").filter(organization=user.organization)
    return events_for_user(user=user)
