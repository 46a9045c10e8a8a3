"""Derived data: model versions, training runs, the batch table and the suggestion funnel.
Reads `events/`; `events/` never imports this app."""

from django.db import models
from django.db.models import Q

from events.models import Attendee, Event


class ModelVersion(models.Model):
    """One trained model of one event: its artifact, its offline metrics, and whether it serves."""

    class Status(models.TextChoices):
        PUBLISHED = "published", "Published (serving)"
        KEPT = "kept", "Kept, not published"
        SUPERSEDED = "superseded", "Superseded by a newer version"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="model_versions")
    backend = models.CharField(max_length=20, default="local")
    number = models.PositiveIntegerField(help_text="1, 2, 3... per event")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.KEPT)
    not_published_reason = models.CharField(max_length=500, blank=True)
    input_fingerprint = models.CharField(
        max_length=64, help_text="Hash of the training inputs: same inputs, same model, no new version."
    )
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Offline metrics, e.g. recall_at_10.")
    n_attendees = models.PositiveIntegerField(default=0)
    n_contexts = models.PositiveIntegerField(default=0)
    n_interactions = models.PositiveIntegerField(default=0)
    training_seconds = models.FloatField(default=0.0)
    artifact = models.CharField(max_length=500, blank=True, help_text="Path of the stored model.")
    artifact_bytes = models.PositiveBigIntegerField(default=0)
    remote_arn = models.CharField(max_length=300, blank=True, help_text="Solution version ARN (Personalize).")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "number"], name="model_version_number_unique"),
            models.UniqueConstraint(
                fields=["event"], condition=Q(status="published"), name="model_version_one_published"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} v{self.number} ({self.status})"


class TrainingRun(models.Model):
    """A long-running job (a training, a batch, a Personalize run, a teardown) as a row that a
    Celery task advances. A crash leaves the row, and the next task resumes from it."""

    class Kind(models.TextChoices):
        TRAIN = "train", "Train"
        BATCH = "batch", "Batch recommendations"
        PERSONALIZE = "personalize", "Amazon Personalize run"
        TEARDOWN = "teardown", "Teardown"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        UNCHANGED = "unchanged", "Unchanged (same inputs)"
        SKIPPED = "skipped", "Skipped (not enough new data)"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="training_runs")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TRAIN)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=50, default="manual", help_text="schedule, manual, cli, admin, ...")
    progress = models.FloatField(default=0.0, help_text="0..1")
    steps = models.JSONField(default=list, blank=True, help_text="[{name, status, started_at, ...}]")
    message = models.TextField(blank=True, help_text="Outcome, or the reason it failed.")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["event", "kind", "status"], name="run_event_kind_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.event} ({self.status})"


class BatchRecommendation(models.Model):
    """The batch table: a precomputed list per attendee, serving the on-demand phase."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="batch_recommendations")
    attendee = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="batch_recommendations")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True)
    source = models.CharField(max_length=20, default="local")
    items = models.JSONField(default=list, help_text="[{attendee_id, score, reasons: [{kind, text, weight}]}]")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["attendee"], name="batch_recommendation_one_per_attendee")]

    def __str__(self) -> str:
        return f"batch for {self.attendee_id}"


class FunnelEvent(models.Model):
    """One step of the suggestion funnel: shown -> opened -> requested -> accepted -> meeting booked
    -> meeting held."""

    class Stage(models.TextChoices):
        SHOWN = "shown", "Shown"
        OPENED = "opened", "Opened"
        REQUESTED = "requested", "Connection requested"
        ACCEPTED = "accepted", "Connection accepted"
        BOOKED = "booked", "Meeting booked"
        HELD = "held", "Meeting held"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="funnel_events")
    viewer = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="funnel_as_viewer")
    suggested = models.ForeignKey(Attendee, on_delete=models.CASCADE, related_name="funnel_as_suggested")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    source = models.CharField(max_length=20, help_text="rules, local, personalize, batch")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["event", "stage", "source"], name="funnel_event_stage_source")]

    def __str__(self) -> str:
        return f"{self.stage}: {self.suggested_id} to {self.viewer_id}"


class MatchmakingRule(models.Model):
    """An organizer's rule for one event, applied by the rules engine (and so by every phase
    that blends rules evidence). Edited in the admin.

    - weight: how much one piece of a declared signal counts (shared interest, complementary
      offer/seek, planned session), replacing the default weight of that signal;
    - allow: "who may meet whom": once a group has any allow rule, attendees of `from_group`
      are suggested only attendees of the `to_group`s of its allow rules (sponsors -> buyers);
      groups without allow rules are unrestricted;
    - boost_group / boost_tag: multiply the score of candidates in `to_group`, or who declared
      `tag` (as an interest or an offer), by `value`; limited to viewers of `from_group` if set.
    """

    class Kind(models.TextChoices):
        WEIGHT = "weight", "Weight of a signal"
        ALLOW = "allow", "Who may meet whom"
        BOOST_GROUP = "boost_group", "Boost a group"
        BOOST_TAG = "boost_tag", "Boost a tag"

    class Signal(models.TextChoices):
        SHARED_INTEREST = "shared_interest", "Shared interest"
        COMPLEMENTARY = "complementary", "Complementary offer and seek"
        PLANNED_SESSION = "planned_session", "Planned session in common"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="matchmaking_rules")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    signal = models.CharField(max_length=20, choices=Signal.choices, blank=True, help_text="For weight rules.")
    from_group = models.CharField(
        max_length=50, blank=True, help_text="Viewer's group (allow; boosts: blank = every viewer)."
    )
    to_group = models.CharField(max_length=50, blank=True, help_text="Candidate's group (allow, boost_group).")
    tag = models.ForeignKey(
        "events.InterestTag", on_delete=models.CASCADE, null=True, blank=True, related_name="matchmaking_rules"
    )
    value = models.FloatField(default=1.0, help_text="The weight, or the boost factor (1.5 = +50%).")
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event", "kind", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="weight") | ~Q(signal=""),
                name="matchmaking_rule_weight_has_signal",
                violation_error_message="A weight rule names the signal it weighs.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="allow") | (~Q(from_group="") & ~Q(to_group="")),
                name="matchmaking_rule_allow_has_groups",
                violation_error_message="An allow rule names both groups.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="boost_group") | ~Q(to_group=""),
                name="matchmaking_rule_boost_group_has_group",
                violation_error_message="A group boost names the boosted group.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="boost_tag") | Q(tag__isnull=False),
                name="matchmaking_rule_boost_tag_has_tag",
                violation_error_message="A tag boost names the boosted tag.",
            ),
            models.CheckConstraint(
                condition=Q(value__gte=0),
                name="matchmaking_rule_value_not_negative",
                violation_error_message="A weight or boost cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.event_id})"


class PushSequence(models.Model):
    """The last number handed out on one live channel: an attendee's widget ("attendee:<pk>") or an
    event's dashboards ("dashboard:<pk>"). In the database, not the cache: a cache may evict the
    counter, and a counter that restarts sends numbers backwards, which a client takes for
    duplicates (the widget froze that way in the demo). See `recommendations.live.sequences`."""

    name = models.CharField(max_length=64, primary_key=True)
    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"
