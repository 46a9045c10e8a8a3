from rest_framework import generics

from .permissions import events_for_caller
from .serializers import EventOutputSerializer


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
