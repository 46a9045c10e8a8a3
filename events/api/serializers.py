from django.conf import settings
from rest_framework import serializers

from ..enums import ConnectionStatus, ContextKind, InteractionType
from ..ingestion import ACCEPTED, CLOCK_SKEW, DUPLICATE, MAX_BATCH, REJECTED
from ..models import Event, Organization
from ..upserts import STATUSES


class EventOutputSerializer(serializers.ModelSerializer):
    organization: serializers.SlugRelatedField[Organization] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = Event
        fields = [
            "slug",
            "name",
            "organization",
            "timezone",
            "live_starts_at",
            "live_ends_at",
            "on_demand_ends_at",
            "phase",
            "backend",
            "qualifying_threshold",
        ]


# --- Interaction batches ---------------------------------------------------------------------------
# These two describe the wire format for the OpenAPI schema. The view parses items itself (see
# events.ingestion.parse_item), because a 500-item batch must not pay for 500 serializer runs, and
# because one bad item must not reject the others.


class InteractionItemInputSerializer(serializers.Serializer):
    client_event_id = serializers.CharField(
        max_length=128, help_text="Your id for this interaction, unique per event. A retry with the same id is a no-op."
    )
    attendee_id = serializers.CharField(max_length=128, help_text="The attendee's external id.")
    context_kind = serializers.ChoiceField(choices=ContextKind.choices)
    context_id = serializers.CharField(
        max_length=128, help_text="External id of the room or content item, or the interest tag's slug."
    )
    type = serializers.ChoiceField(
        choices=InteractionType.choices,
        help_text="`join_room` without a value opens a room visit and `leave_room` closes it (the server "
        "computes the dwell); `join_room` with a value is a complete visit of that many seconds.",
    )
    value = serializers.FloatField(required=False, allow_null=True, min_value=0, help_text="e.g. dwell seconds")
    occurred_at = serializers.DateTimeField(
        help_text="ISO 8601 with a time zone (or epoch seconds), inside the event window ± "
        f"{int(CLOCK_SKEW.total_seconds())} s of clock skew and not in the future."
    )


class InteractionBatchInputSerializer(serializers.Serializer):
    # many=True hands max_length to the ListSerializer (DRF >= 3.14); the stubs' __init__ lacks it.
    interactions = InteractionItemInputSerializer(  # type: ignore[call-arg]
        many=True, max_length=MAX_BATCH, help_text=f"1 to {MAX_BATCH} interactions; more gets HTTP 413."
    )


class InteractionItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    client_event_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=[ACCEPTED, DUPLICATE, REJECTED])
    reason = serializers.CharField(required=False, help_text="Why the item was rejected, or what it duplicates.")


class InteractionBatchOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = InteractionItemResultSerializer(many=True)


class QuestionnaireHydrateInputSerializer(serializers.Serializer):
    attendee_ids = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        max_length=MAX_BATCH,
        help_text="External ids of the attendees whose answers changed; all attendees if omitted.",
    )


class QuestionnaireHydrateOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    removed = serializers.IntegerField()
    unchanged = serializers.IntegerField()


# --- Attendee actions (events.api.attendees) ---


class TargetInputSerializer(serializers.Serializer):
    attendee = serializers.CharField(max_length=128, help_text="External id of the other attendee")


class ConnectionRequestInputSerializer(serializers.Serializer):
    recipient = serializers.CharField(max_length=128, help_text="External id of the attendee to connect with")
    message = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ConnectionListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ConnectionStatus.choices, required=False)


class ConnectionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    direction = serializers.SerializerMethodField(help_text="incoming or outgoing, seen from the attendee of the URL")
    requester = serializers.CharField(source="requester.external_id")
    recipient = serializers.CharField(source="recipient.external_id")
    status = serializers.CharField()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()
    responded_at = serializers.DateTimeField(allow_null=True)

    def get_direction(self, connection) -> str:
        return "incoming" if connection.recipient_id == self.context["attendee"].pk else "outgoing"


class ConsentsSerializer(serializers.Serializer):
    consent_be_recommended = serializers.BooleanField(required=False)
    consent_receive_recommendations = serializers.BooleanField(required=False)
    consent_training = serializers.BooleanField(required=False)


class WidgetTokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds")
    widget_url = serializers.CharField(help_text="The script to embed")
    websocket_path = serializers.CharField()


class ContentViewInputSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=128, help_text="External id of the content item")
    seconds = serializers.FloatField(min_value=0, help_text="Dwell: how long the attendee stayed")
    client_event_id = serializers.CharField(max_length=128)


# --- The platform's facts (events.upserts): attendees, rooms and sessions, content, topics ---------
# Every field but the key is optional: an item sets what it holds and leaves the rest (a new row
# needs the fields `events.upserts` names as required to create it). Lists replace the whole set.


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone. A naive time is refused: the platform's local time would shift
    the schedule silently."""

    default_error_messages = {"naive": "Give the time with its offset or Z, e.g. 2026-12-06T09:00:00+01:00."}

    def enforce_timezone(self, value):
        if value.tzinfo is None:
            self.fail("naive")
        return super().enforce_timezone(value)


def _slugs(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.SlugField(max_length=100), required=False, max_length=200, help_text=help_text
    )


def _room_ids(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, max_length=500, help_text=help_text
    )


class AttendeeUpsertItemSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128, help_text="Your id for the attendee, unique per event.")
    display_name = serializers.CharField(max_length=200, required=False, help_text="Required to create.")
    headline = serializers.CharField(max_length=300, required=False, allow_blank=True)
    company = serializers.CharField(max_length=200, required=False, allow_blank=True)
    role = serializers.CharField(max_length=200, required=False, allow_blank=True)
    group = serializers.CharField(
        max_length=50, required=False, allow_blank=True, help_text="For organizer rules: sponsor, buyer, speaker..."
    )
    consent_be_recommended = serializers.BooleanField(required=False, help_text="May be suggested to others.")
    consent_receive_recommendations = serializers.BooleanField(required=False, help_text="Receives suggestions.")
    consent_training = serializers.BooleanField(required=False, help_text="Their activity may train the model.")
    email = serializers.EmailField(required=False, allow_blank=True, help_text="For meeting mails and the digest.")
    email_meetings = serializers.BooleanField(required=False, help_text="Mails about meeting requests and bookings.")
    email_digest = serializers.BooleanField(required=False, help_text="The daily people-to-meet mail.")
    language = serializers.ChoiceField(
        choices=[("", "the site's default"), *settings.LANGUAGES],
        required=False,
        help_text="The language of their mails (the attendee pages' switcher sets it too).",
    )
    interests = _slugs("Topic slugs they are interested in (the whole set).")
    offers = _slugs("Topic slugs they offer (the whole set).")
    seeks = _slugs("Topic slugs they seek (the whole set).")
    planned_rooms = _room_ids("External ids of the rooms or sessions they plan to attend (the whole set).")


class RoomUpsertItemSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128, help_text="Your id for the room or session.")
    name = serializers.CharField(max_length=200, required=False, help_text="Required to create.")
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    track = serializers.CharField(max_length=100, required=False, allow_blank=True)
    starts_at = AwareDateTimeField(required=False, allow_null=True, help_text="A session's start (with an offset).")
    ends_at = AwareDateTimeField(required=False, allow_null=True, help_text="Not before starts_at.")
    topics = _slugs("Topic slugs of the session (the whole set).")


class ContentUpsertItemSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128, help_text="Your id for the content item.")
    title = serializers.CharField(max_length=200, required=False, help_text="Required to create.")
    kind = serializers.CharField(max_length=50, required=False, help_text="video, slides, poster... (default video)")
    room = serializers.CharField(
        max_length=128, required=False, allow_null=True, help_text="External id of its room or session, or null."
    )
    duration_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**31 - 1)
    topics = _slugs("Topic slugs of the item (the whole set).")


class InterestTagUpsertItemSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=100, help_text="The topic's id in requests, unique per event.")
    # A declared field named like Field.label: the serializer's metaclass takes it out of the class
    # attributes (it is the "label" key of the item), which the stubs cannot know.
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=200, required=False, help_text="Its name. Required to create."
    )


def _upsert_output(key_name: str) -> type[serializers.Serializer]:
    result = type(
        f"{key_name.title().replace('_', '')}UpsertResultSerializer",
        (serializers.Serializer,),
        {
            "index": serializers.IntegerField(help_text="Position of the item in the request."),
            key_name: serializers.CharField(allow_null=True),
            "status": serializers.ChoiceField(choices=list(STATUSES)),
            "reason": serializers.CharField(required=False, help_text="Why the item was rejected."),
        },
    )
    fields = {name: serializers.IntegerField() for name in STATUSES}
    fields["results"] = result(many=True)
    return type(f"{key_name.title().replace('_', '')}UpsertOutputSerializer", (serializers.Serializer,), fields)


ExternalIdUpsertOutputSerializer = _upsert_output("external_id")
SlugUpsertOutputSerializer = _upsert_output("slug")


# --- Meetings (events.meetings) ---


class MeetingProposeInputSerializer(serializers.Serializer):
    recipient = serializers.CharField(max_length=128, help_text="External id of the attendee to meet")
    slots = serializers.ListField(
        child=AwareDateTimeField(), min_length=1, max_length=10, help_text="Slot starts from GET .../meetings/slots/"
    )
    message = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class MeetingSlotsInputSerializer(serializers.Serializer):
    slots = serializers.ListField(child=AwareDateTimeField(), min_length=1, max_length=10)


class MeetingAcceptInputSerializer(serializers.Serializer):
    starts_at = AwareDateTimeField(help_text="One of the proposed slots")


class MeetingSlotsQuerySerializer(serializers.Serializer):
    attendee = serializers.CharField(max_length=128, help_text="External id of the other attendee")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class MeetingPlaceSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.CharField()


class MeetingOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    requester = serializers.CharField(source="requester.external_id")
    recipient = serializers.CharField(source="recipient.external_id")
    status = serializers.CharField()
    awaiting = serializers.SerializerMethodField(help_text="External id of who must answer, while proposed")
    message = serializers.CharField()
    slots = serializers.SerializerMethodField(help_text="Proposed slot starts, while proposed")
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    place = MeetingPlaceSerializer(allow_null=True)
    calendar_url = serializers.SerializerMethodField(help_text="The .ics file, once booked or cancelled")
    checked_in = serializers.SerializerMethodField(help_text="External ids of who checked in (or joined the link)")
    held_at = serializers.DateTimeField(allow_null=True, help_text="When both were in: the meeting was held")

    def get_awaiting(self, meeting) -> str | None:
        if meeting.status != "proposed":
            return None
        return (
            meeting.recipient.external_id
            if meeting.proposed_by_id == meeting.requester_id
            else meeting.requester.external_id
        )

    def get_slots(self, meeting) -> list[str]:
        if meeting.status != "proposed":
            return []
        return [serializers.DateTimeField().to_representation(s.starts_at) for s in meeting.slots.all()]

    def get_checked_in(self, meeting) -> list[str]:
        return [
            person.external_id
            for person, at in (
                (meeting.requester, meeting.requester_checked_in_at),
                (meeting.recipient, meeting.recipient_checked_in_at),
            )
            if at is not None
        ]

    def get_calendar_url(self, meeting) -> str | None:
        if meeting.starts_at is None:
            return None
        me = self.context["attendee"]
        return f"/api/v1/events/{me.event.slug}/attendees/{me.external_id}/meetings/{meeting.pk}/calendar.ics"


# --- Messages (events.messages) ---


class MessageQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0, help_text="The last number you hold: newer ones come")


class MessageInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=1000, help_text="1 to 1000 characters")


class MessageOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="Per thread, from 1")
    sender = serializers.CharField(help_text="External id of who wrote it")
    body = serializers.CharField()
    sent_at = serializers.DateTimeField()


class ThreadOutputSerializer(serializers.Serializer):
    thread = serializers.IntegerField(help_text="The connection's id")
    messages = MessageOutputSerializer(many=True)
    last = serializers.IntegerField(help_text="The highest number in the thread so far")
