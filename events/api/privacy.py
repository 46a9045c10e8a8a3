"""An attendee's data: download it (JSON) and erase it. Only the attendee themselves or the
organization's platform (its API key) may; organizers cannot download personal exports."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from ..privacy import attendee_data_export, attendee_erase
from .permissions import attendee_for_caller


class AttendeeDataView(APIView):
    @extend_schema(
        summary="Download everything held about an attendee",
        responses={200: OpenApiResponse(description="The attendee's data as JSON"), 404: None},
    )
    def get(self, request, event: str, external_id: str):
        attendee = attendee_for_caller(request, event_slug=event, external_id=external_id, write=True)
        return Response(attendee_data_export(attendee=attendee))


class AttendeeEraseView(APIView):
    @extend_schema(
        summary="Erase an attendee and everything about them",
        responses={200: OpenApiResponse(description="What was deleted, per model"), 404: None},
    )
    def delete(self, request, event: str, external_id: str):
        attendee = attendee_for_caller(request, event_slug=event, external_id=external_id, write=True)
        deleted = attendee_erase(attendee=attendee)
        return Response({"erased": external_id, "deleted": deleted}, status=status.HTTP_200_OK)
