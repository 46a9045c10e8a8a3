"""People and rows for dashboard tests."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from events.management.commands.create_organizer import organizers_group
from events.models import (
    ApiKey,
    Block,
    Connection,
    Meeting,
    MeetingPlace,
    MeetingWindow,
    NotRelevant,
    WebhookDelivery,
    WebhookEndpoint,
)
from recommendations.backends.personalize.models import RemoteResource
from recommendations.jobs.schedules import event_schedules_sync
from recommendations.models import BatchRecommendation, FunnelEvent, MatchmakingRule, ModelVersion, TrainingRun
from tests.factories import (
    AttendeeFactory,
    ContentFactory,
    InteractionFactory,
    InterestTagFactory,
    OrganizationFactory,
    RoomFactory,
    UserFactory,
)

PASSWORD = "pw-for-tests-only"


def organizer(organization=None, **kwargs):
    """A staff user in the Organizers group (as `manage.py create_organizer` makes them)."""
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(organizers_group())
    (organization or OrganizationFactory()).organizers.add(user)
    return get_user_model().objects.get(pk=user.pk)  # fresh: no cached permissions


def tenant_rows(event, label: str):
    """A row of every tenant-owned model for `event`, each named with `label`."""
    a = AttendeeFactory(event=event, display_name=f"{label} attendee", external_id=f"{label}-a")
    b = AttendeeFactory(event=event, display_name=f"{label} other", external_id=f"{label}-b")
    room = RoomFactory(event=event, name=f"{label} room", external_id=f"{label}-room")
    ContentFactory(event=event, title=f"{label} content", external_id=f"{label}-content")
    tag = InterestTagFactory(event=event, label=f"{label} tag", slug=f"{label.lower()}-tag")
    InteractionFactory(attendee=a, room=room, client_event_id=f"{label}-ce")
    Connection.objects.create(event=event, requester=a, recipient=b)
    Block.objects.create(event=event, blocker=b, blocked=a)
    NotRelevant.objects.create(event=event, attendee=a, target=b)
    ApiKey.objects.create(organization=event.organization, name=f"{label} key", prefix=f"{label}pfx", hashed_key="x")
    version = ModelVersion.objects.create(event=event, number=1, input_fingerprint=label)
    TrainingRun.objects.create(event=event, message=f"{label} run")
    TrainingRun.objects.create(event=event, kind=TrainingRun.Kind.PERSONALIZE, message=f"{label} remote run")
    BatchRecommendation.objects.create(event=event, attendee=a, source="rules", computed_at=timezone.now())
    FunnelEvent.objects.create(event=event, viewer=a, suggested=b, stage="shown", source="rules", model_version=version)
    MatchmakingRule.objects.create(event=event, kind="boost_tag", tag=tag, value=1.5, note=f"{label} rule")
    RemoteResource.objects.create(event=event, kind="campaign", name=f"{label}-campaign")
    window = MeetingWindow.objects.create(
        event=event, starts_at=timezone.now() + timedelta(days=1), ends_at=timezone.now() + timedelta(days=1, hours=2)
    )
    place = MeetingPlace.objects.create(event=event, name=f"{label} table")
    Meeting.objects.create(
        event=event,
        requester=a,
        recipient=b,
        proposed_by=a,
        status="booked",
        message=f"{label} meeting",
        starts_at=window.starts_at,
        ends_at=window.starts_at + timedelta(minutes=15),
        place=place,
    )
    hook = WebhookEndpoint.objects.create(organization=event.organization, url=f"https://{label.lower()}.example/hook")
    WebhookDelivery.objects.create(
        endpoint=hook,
        event=event,
        message_id=f"msg_{label}",
        kind="connection.accepted",
        payload={},
        next_attempt_at=timezone.now(),
    )
    event_schedules_sync(event=event)
