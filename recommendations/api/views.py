"""The suggestions API: an attendee's people to meet, best first, each with its reasons, and the
funnel's "opened" (a suggested profile looked at). Served by the one serving function; a
platform's warm request takes the short way (`recommendations.api.fastpath`).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from events.api.attendees import AttendeeView, other_attendee
from events.api.serializers import TargetInputSerializer
from matchmaking_site.sentences import localize, localize_reasons
from recommendations.api.permissions import attendee_for_reader
from recommendations.api.serializers import (
    RecommendationsOutputSerializer,
    RecommendationsQuerySerializer,
    RecordedOutputSerializer,
)
from recommendations.serving.funnel import Stage, funnel_record, funnel_record_shown
from recommendations.serving.lists import Recommendations, recommendations_for


def recommendations_output(result: Recommendations) -> dict:
    """The body described by `RecommendationsOutputSerializer`, built directly: this is the
    hottest response of the API, and DRF's nested serializers were a fifth of a cached request's
    time. `test_recommendations_response_shape` pins the two together."""
    return {
        "items": [
            {
                "external_id": item.external_id,
                "display_name": item.display_name,
                "headline": item.headline,
                "company": item.company,
                "score": item.score,
                "here_now": item.here_now,
                "reasons": localize_reasons(item.reasons),
                "source": item.source,
            }
            for item in result.items
        ],
        "source": result.source,
        "model_version": result.model_version,
        "phase": result.phase,
        "cached": result.cached,
        "empty_reason": localize(result.empty_reason),
        "empty_code": result.empty_code,
    }


class RecommendationsView(AttendeeView):
    @extend_schema(parameters=[RecommendationsQuerySerializer], responses=RecommendationsOutputSerializer)
    def get(self, request, event, external_id):
        """People to meet for this attendee, best first, each with a score and the reasons."""
        query = RecommendationsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        attendee = attendee_for_reader(request, event_slug=event, external_id=external_id)
        result = recommendations_for(attendee=attendee, num_results=query.validated_data["num_results"])
        funnel_record_shown(viewer=attendee, result=result)
        return Response(recommendations_output(result))


class OpenedView(AttendeeView):
    @extend_schema(request=TargetInputSerializer, responses=RecordedOutputSerializer)
    def post(self, request, event, external_id):
        """The attendee opened a suggested profile (funnel stage "opened")."""
        attendee = self.attendee()
        data = TargetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        other = other_attendee(attendee, data.validated_data["attendee"], "attendee")
        recorded = funnel_record(viewer_id=attendee.pk, suggested_id=other.pk, stage=Stage.OPENED)
        return Response({"recorded": recorded is not None})
