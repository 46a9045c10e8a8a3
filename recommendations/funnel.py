"""The suggestion funnel: shown -> opened -> requested -> accepted, per source and model version.

"Shown" is recorded by whoever displays a list (the API view, the widget), with the list's source
and model version. The later stages are attributed to the most recent "shown" of the same pair,
so the dashboard can compare sources: a connection request between two attendees who were never
suggested to each other is not part of the funnel and is not recorded.
"""

from events.models import Attendee

from .models import FunnelEvent
from .serving import Recommendations

Stage = FunnelEvent.Stage


def funnel_record_shown(*, viewer: Attendee, result: Recommendations) -> list[FunnelEvent]:
    if not result.items:
        return []
    return FunnelEvent.objects.bulk_create(
        FunnelEvent(
            event_id=viewer.event_id,
            viewer=viewer,
            suggested_id=item.attendee_id,
            stage=Stage.SHOWN,
            source=result.source,
            model_version_id=result.model_version_id,
        )
        for item in result.items
    )


def funnel_record(*, viewer_id: int, suggested_id: int, stage: str) -> FunnelEvent | None:
    """Record a later stage for a pair, attributed to its last "shown"; None if never shown."""
    shown = (
        FunnelEvent.objects.filter(viewer_id=viewer_id, suggested_id=suggested_id, stage=Stage.SHOWN)
        .order_by("-at", "-id")
        .values("event_id", "source", "model_version_id")
        .first()
    )
    if shown is None:
        return None
    return FunnelEvent.objects.create(viewer_id=viewer_id, suggested_id=suggested_id, stage=stage, **shown)
