"""The facts of the event world: who is there, where they go, what happened.

Models hold fields, constraints and small properties; logic lives in `events.services`.
Every row below Organization belongs to exactly one event, and the services refuse to link
rows of two events (the database cannot express "same event" across foreign keys).
"""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Greatest, Least

from .enums import (
    Backend,
    ConnectionStatus,
    ContextKind,
    EnginePreset,
    InteractionSource,
    InteractionType,
    MeetingStatus,
    Phase,
    default_dwell_thresholds,
    default_interaction_weights,
)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'.")


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    organizers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="organizations", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    live_starts_at = models.DateTimeField(null=True, blank=True)
    live_ends_at = models.DateTimeField(null=True, blank=True)
    on_demand_ends_at = models.DateTimeField(null=True, blank=True)

    # Matchmaking settings.
    qualifying_threshold = models.PositiveIntegerField(
        default=1000,
        help_text="Qualifying interactions needed before the trained model replaces the rules engine.",
    )
    min_active_contexts = models.PositiveIntegerField(
        default=25,
        help_text="Contexts with two or more interactions needed to go live (Amazon Personalize needs 25).",
    )
    dwell_thresholds = models.JSONField(
        default=default_dwell_thresholds,
        blank=True,
        help_text='Seconds of dwell an interaction type needs to qualify, e.g. {"join_room": 60}.',
    )
    interaction_weights = models.JSONField(
        default=default_interaction_weights,
        blank=True,
        help_text="Weight of one interaction of each type in the model.",
    )
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.LOCAL)
    engine_preset = models.CharField(
        max_length=20,
        choices=EnginePreset.choices,
        default=EnginePreset.ROOMS,
        blank=True,
        help_text="What the contexts are, for the local model's settings: rooms and talks, or short "
        "face-to-face contact sessions from proximity badges (a retrain applies a change).",
    )
    rules_cache_seconds = models.PositiveIntegerField(default=600)
    model_cache_seconds = models.PositiveIntegerField(default=900)
    exposure_cap_share = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0)],
        help_text="Largest share of all suggestion lists one attendee may appear in.",
    )
    retention_days = models.PositiveIntegerField(
        default=90, help_text="Days after the event closes before personal data is purged."
    )
    meeting_slot_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(5), MaxValueValidator(120)],
        help_text="Length of a 1:1 meeting; slots are laid from the start of each meeting window.",
    )

    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.COLD)
    phase_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-live_starts_at", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(live_ends_at__isnull=True)
                | Q(live_starts_at__isnull=True)
                | Q(live_ends_at__gt=F("live_starts_at")),
                name="event_live_window_ordered",
                violation_error_message="The live window must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(on_demand_ends_at__isnull=True)
                | Q(live_ends_at__isnull=True)
                | Q(on_demand_ends_at__gte=F("live_ends_at")),
                name="event_on_demand_after_live",
                violation_error_message="The on-demand window must end after the live window.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def dwell_threshold(self, interaction_type: str) -> float:
        return float((self.dwell_thresholds or {}).get(interaction_type, 0))

    def interaction_weight(self, interaction_type: str) -> float:
        weights = self.interaction_weights or {}
        return float(weights.get(interaction_type, default_interaction_weights().get(interaction_type, 1.0)))


class InterestTag(models.Model):
    """A declared topic. Interests, offers and seeks all point at tags; a tag is also a context
    that everyone who chose it "joined" (questionnaire hydration)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="interest_tags")
    slug = models.SlugField(max_length=100)
    label = models.CharField(max_length=200)

    class Meta:
        ordering = ["label"]
        constraints = [models.UniqueConstraint(fields=["event", "slug"], name="interest_tag_unique_per_event")]

    def __str__(self) -> str:
        return self.label


class Room(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rooms")
    external_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    track = models.CharField(max_length=100, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    topics = models.ManyToManyField(InterestTag, related_name="rooms", blank=True)

    class Meta:
        ordering = ["starts_at", "name"]
        constraints = [models.UniqueConstraint(fields=["event", "external_id"], name="room_unique_per_event")]

    def __str__(self) -> str:
        return self.name


class Content(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="contents")
    external_id = models.CharField(max_length=128)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=50, default="video")
    room = models.ForeignKey(Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="contents")
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    topics = models.ManyToManyField(InterestTag, related_name="contents", blank=True)

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "content"
        constraints = [models.UniqueConstraint(fields=["event", "external_id"], name="content_unique_per_event")]

    def __str__(self) -> str:
        return self.title


class Attendee(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attendees")
    external_id = models.CharField(max_length=128, help_text="The id the event platform knows them by.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="attendances"
    )
    display_name = models.CharField(max_length=200)
    headline = models.CharField(max_length=300, blank=True)
    company = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=200, blank=True)
    group = models.CharField(
        max_length=50, blank=True, help_text="Attendee group for organizer rules, e.g. sponsor, buyer, speaker."
    )
    interests = models.ManyToManyField(InterestTag, related_name="interested_attendees", blank=True)
    offers = models.ManyToManyField(InterestTag, related_name="offering_attendees", blank=True)
    seeks = models.ManyToManyField(InterestTag, related_name="seeking_attendees", blank=True)
    planned_rooms = models.ManyToManyField(Room, related_name="planned_attendees", blank=True)

    # Three separate consents, all revocable at any time.
    consent_be_recommended = models.BooleanField(default=True, help_text="May be suggested to others.")
    consent_receive_recommendations = models.BooleanField(default=True, help_text="Receives suggestions.")
    consent_training = models.BooleanField(default=True, help_text="Activity may be used to train the model.")
    # Email (events.notifications, recommendations.digest): where, and which kinds they still want;
    # every message carries a one-click unsubscribe for its kind.
    email = models.EmailField(blank=True)
    email_meetings = models.BooleanField(default=True, help_text="Emails about meeting requests and bookings.")
    email_digest = models.BooleanField(default=True, help_text="A daily email of people to meet.")
    # The language they chose on the attendee pages (blank: the site's default); their emails use it.
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(fields=["event", "external_id"], name="attendee_unique_per_event"),
            models.UniqueConstraint(
                fields=["event", "user"], condition=Q(user__isnull=False), name="attendee_one_per_user_per_event"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name


class Interaction(models.Model):
    """One thing an attendee did with one context (a room, a content item or an interest tag).
    A fact: written once by `events.services`, never edited."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="interactions")
    attendee = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="interactions")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, null=True, blank=True, related_name="interactions")
    content = models.ForeignKey(Content, on_delete=models.CASCADE, null=True, blank=True, related_name="interactions")
    interest = models.ForeignKey(
        InterestTag, on_delete=models.CASCADE, null=True, blank=True, related_name="interactions"
    )
    type = models.CharField(max_length=32, choices=InteractionType.choices)
    value = models.FloatField(null=True, blank=True, help_text="e.g. dwell seconds")
    occurred_at = models.DateTimeField()
    client_event_id = models.CharField(max_length=128, help_text="Unique per event; makes retries idempotent.")
    source = models.CharField(max_length=20, choices=InteractionSource.choices, default=InteractionSource.LIVE)
    qualifies = models.BooleanField(default=False, help_text="Passed the event's dwell threshold for its type.")
    created_at = models.DateTimeField(auto_now_add=True)
    # Outbox marker: null until downstream work (model update, push, forwarding) has run.
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "client_event_id"], name="interaction_client_id_unique"),
            models.CheckConstraint(
                condition=(
                    Q(room__isnull=False, content__isnull=True, interest__isnull=True)
                    | Q(room__isnull=True, content__isnull=False, interest__isnull=True)
                    | Q(room__isnull=True, content__isnull=True, interest__isnull=False)
                ),
                name="interaction_exactly_one_context",
                violation_error_message="An interaction touches exactly one room, content item or interest tag.",
            ),
            models.CheckConstraint(
                condition=Q(value__isnull=True) | Q(value__gte=0),
                name="interaction_value_not_negative",
                violation_error_message="An interaction's value (dwell) cannot be negative.",
            ),
        ]
        indexes = [
            models.Index(fields=["event", "occurred_at"], name="interaction_event_time"),
            models.Index(fields=["attendee", "occurred_at"], name="interaction_attendee_time"),
            models.Index(
                fields=["event", "created_at"],
                condition=Q(processed_at__isnull=True),
                name="interaction_outbox",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attendee_id} {self.type} {self.context_kind} @ {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def context_kind(self) -> str:
        if self.room_id:
            return ContextKind.ROOM
        if self.content_id:
            return ContextKind.CONTENT
        return ContextKind.INTEREST


class Connection(models.Model):
    """A request from one attendee to another, and its answer. At most one per unordered pair."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="connections")
    requester = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="connections_sent")
    recipient = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="connections_received")
    status = models.CharField(max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.REQUESTED)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(requester=F("recipient")), name="connection_not_self"),
            models.UniqueConstraint(
                Least("requester", "recipient"), Greatest("requester", "recipient"), name="connection_one_per_pair"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.requester_id} -> {self.recipient_id} ({self.status})"


class Message(models.Model):
    """One message of the thread of a mutual connection (`events.messages`). `number` counts the
    thread's messages from 1: a client that holds number n and is pushed n + 2 knows it missed one
    and catches up over REST."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="messages")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="messages_sent")
    number = models.PositiveIntegerField()
    body = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection", "number"]
        constraints = [models.UniqueConstraint(fields=["connection", "number"], name="message_number_per_thread")]

    def __str__(self) -> str:
        return f"{self.connection_id}#{self.number}"


class Block(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="blocks")
    blocker = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="blocks_made")
    blocked = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="blocks_received")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(blocker=F("blocked")), name="block_not_self"),
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocked {self.blocked_id}"


class NotRelevant(models.Model):
    """ "Don't suggest this person to me again." Softer than a block: only one direction."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="not_relevant")
    attendee = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="not_relevant_marks")
    target = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="not_relevant_to")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "not-relevant mark"
        constraints = [
            models.CheckConstraint(condition=~Q(attendee=F("target")), name="not_relevant_not_self"),
            models.UniqueConstraint(fields=["attendee", "target"], name="not_relevant_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.attendee_id} not relevant {self.target_id}"


class ApiKey(models.Model):
    """An organization's key for the REST API. Only a hash is stored; the key is shown once."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, help_text="First characters, to find the key.")
    hashed_key = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class MeetingWindow(models.Model):
    """The event's meeting hours: 1:1 meetings are booked in slots laid from each window's start."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="meeting_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="meeting_window_ends_after")
        ]

    def __str__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%H:%M}"


class MeetingPlace(models.Model):
    """The organizer's pool of places for meetings: a physical table (a name) or a virtual table
    (a link). When an event has places, a slot is offered only while one of them is free."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="meeting_places")
    name = models.CharField(max_length=100, help_text="e.g. Table 12, or Virtual table 3")
    url = models.URLField(max_length=500, blank=True, help_text="A virtual table's link; empty for a physical one.")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["event", "name"], name="meeting_place_unique_per_event")]

    def __str__(self) -> str:
        return self.name


class Meeting(models.Model):
    """A 1:1 meeting between two attendees of one event (`events.meetings`): proposed with slots by
    one, answered by the other (accept one, decline, or propose others), booked at one slot and place,
    cancelled by either. `proposed_by` is whose slots are open: the other one answers."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="meetings")
    requester = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="meetings_requested")
    recipient = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="meetings_received")
    proposed_by = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=MeetingStatus.choices, default=MeetingStatus.PROPOSED)
    message = models.CharField(max_length=500, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    place = models.ForeignKey(MeetingPlace, on_delete=models.SET_NULL, null=True, blank=True, related_name="meetings")
    # Each of the two checks in at the table, or joins the virtual table's link through us; the
    # meeting is *held* once both did (the funnel's last stage).
    requester_checked_in_at = models.DateTimeField(null=True, blank=True)
    recipient_checked_in_at = models.DateTimeField(null=True, blank=True)
    held_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(requester=F("recipient")), name="meeting_not_with_oneself"),
        ]

    def __str__(self) -> str:
        return f"{self.requester_id} meets {self.recipient_id} ({self.status})"


class MeetingSlot(models.Model):
    """A time proposed for a meeting that is not booked yet."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="slots")
    starts_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]
        constraints = [models.UniqueConstraint(fields=["meeting", "starts_at"], name="meeting_slot_unique")]

    def __str__(self) -> str:
        return f"{self.meeting_id} at {self.starts_at:%Y-%m-%d %H:%M}"


class MeetingHold(models.Model):
    """A booked meeting's hold on a person's or a place's time, from `starts_at` to `ends_at`. The
    database refuses a second hold of one attendee, or of one place, whose time overlaps (on
    PostgreSQL an exclusion constraint over the time range, migration 0016; the unique starts below
    hold everywhere): two requests can never double-book, whatever their timing or the slot grid
    they were offered (`events.meetings.meeting_accept` turns the refusal into a 409)."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="holds")
    attendee = models.ForeignKey(Attendee, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    place = models.ForeignKey(MeetingPlace, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["attendee", "starts_at"],
                condition=Q(attendee__isnull=False),
                name="one_meeting_per_attendee_slot",
            ),
            models.UniqueConstraint(
                fields=["place", "starts_at"], condition=Q(place__isnull=False), name="one_meeting_per_place_slot"
            ),
            models.CheckConstraint(
                condition=Q(attendee__isnull=True, place__isnull=False) | Q(attendee__isnull=False, place__isnull=True),
                name="meeting_hold_of_one_thing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meeting_id} holds {self.attendee_id or self.place_id} at {self.starts_at:%Y-%m-%d %H:%M}"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and 32 random bytes in base64."""
    import base64
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """Where an organization's platform hears what happened (`events.webhooks`): a URL, the secret
    its deliveries are signed with (Standard Webhooks), and the kinds it wants (none listed: all)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500, help_text="https:// address that receives signed POSTs.")
    secret = models.CharField(
        max_length=80, default=new_webhook_secret, help_text="Give it to the platform to check signatures."
    )
    kinds = models.JSONField(default=list, blank=True, help_text="Kinds to send; empty for all.")
    active = models.BooleanField(default=True)
    # After a failed delivery, first attempts of new deliveries wait until then (the retries do):
    # one dead endpoint costs one timeout per backoff step, not one per delivery.
    failing_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "url"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One message to one endpoint, and how its delivery went. Created in the transaction of what
    it reports (at least once: nothing committed goes unsent), sent after commit and retried with
    backoff by the sweeper; `message_id` is the same on every attempt, for the platform to drop
    repeats."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="webhook_deliveries")
    message_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id} ({self.status})"


class LoginLink(models.Model):
    """A sign-in link for an attendee: single use, short-lived. Only a hash of its token is kept;
    the link is shown once, by whoever issued it (`manage.py attendee_login_link`)."""

    attendee = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="login_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"login link of {self.attendee_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class PhaseTransition(models.Model):
    """When and why an event moved from one matchmaking phase to the next (cold -> live -> ...)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="phase_transitions")
    from_phase = models.CharField(max_length=20, choices=Phase.choices)
    to_phase = models.CharField(max_length=20, choices=Phase.choices)
    cause = models.CharField(max_length=300)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.from_phase} -> {self.to_phase} ({self.cause})"


class RoomVisit(models.Model):
    """One attendee's stay in one room, built from a join and its leave (or a timeout).

    Presence arrives as separate join and leave events, possibly out of order; this row pairs them
    and computes the dwell on the server. When the visit closes, it is recorded as one `join_room`
    Interaction whose value is the dwell, the same shape as an imported row. Visits too short to
    qualify are kept (their interaction has `qualifies=False`).
    """

    class CloseReason(models.TextChoices):
        LEAVE = "leave", "Left"
        TIMEOUT = "timeout", "Missed heartbeats"
        LIVE_WINDOW_END = "live_window_end", "Live window ended"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="room_visits")
    attendee = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="room_visits")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="visits")
    # Null while only the leave has arrived (out-of-order delivery): the join completes the row.
    joined_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=20, choices=CloseReason.choices, blank=True)
    join_client_event_id = models.CharField(max_length=128, blank=True)
    leave_client_event_id = models.CharField(max_length=128, blank=True)
    # Browser visits send heartbeats and time out without them; platform (REST) visits do not, and
    # stay open until their leave arrives or the live window ends.
    expects_heartbeats = models.BooleanField(default=False)
    source = models.CharField(max_length=20, choices=InteractionSource.choices, default=InteractionSource.LIVE)
    interaction = models.OneToOneField(
        Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="room_visit"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "join_client_event_id"],
                condition=~Q(join_client_event_id=""),
                name="room_visit_join_id_unique",
            ),
            models.UniqueConstraint(
                fields=["event", "leave_client_event_id"],
                condition=~Q(leave_client_event_id=""),
                name="room_visit_leave_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(joined_at__isnull=True) | Q(left_at__isnull=True) | Q(left_at__gte=F("joined_at")),
                name="room_visit_leave_after_join",
            ),
        ]
        indexes = [
            models.Index(
                fields=["attendee", "room"],
                condition=Q(left_at__isnull=True) | Q(joined_at__isnull=True),
                name="room_visit_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attendee_id} in {self.room_id} from {self.joined_at} to {self.left_at}"

    @property
    def dwell_seconds(self) -> float | None:
        if self.joined_at is None or self.left_at is None:
            return None
        return (self.left_at - self.joined_at).total_seconds()


class EventArchive(models.Model):
    """What remains of an event after its retention period: aggregates, no personal data."""

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="archive")
    attendees = models.PositiveIntegerField(default=0)
    interactions = models.PositiveIntegerField(default=0)
    qualifying_interactions = models.PositiveIntegerField(default=0)
    room_dwell_seconds = models.FloatField(default=0.0)
    connections_accepted = models.PositiveIntegerField(default=0)
    per_room = models.JSONField(default=dict, blank=True)
    archived_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"archive of {self.event}"
