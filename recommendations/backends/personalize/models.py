"""State kept for the Amazon Personalize backend: the pseudonymous ids, the remote resources of
each event, and the run rows (a proxy of `recommendations.TrainingRun`, so every long job shows in
one list while this app gets its own admin)."""

from django.db import models

from events.models import Event
from recommendations.models import TrainingRun


class PersonalizeId(models.Model):
    """The one canonical table of pseudonymous ids sent to AWS.

    Training exports, PutEvents, PutItems and GetRecommendations all read their ids here, so the
    id an attendee was trained under is the id they are served under. Tokens are random (not a
    hash of the primary key), so nothing that leaves the database can be reversed without it.
    `object_id` is a plain integer, not a foreign key: an erased attendee's token must outlive
    the row until the next retrain has removed them from the remote model.
    """

    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        ATTENDEE = "attendee", "Attendee (ITEM_ID)"
        ROOM = "room", "Room (USER_ID)"
        CONTENT = "content", "Content (USER_ID)"
        INTEREST = "interest", "Interest tag (USER_ID)"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="personalize_ids")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    object_id = models.BigIntegerField()
    token = models.CharField(max_length=32, unique=True)
    erased_at = models.DateTimeField(null=True, blank=True, help_text="Hidden remotely; left out of exports.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "pseudonymous id"
        constraints = [
            models.UniqueConstraint(fields=["event", "kind", "object_id"], name="personalize_id_one_per_object")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} = {self.token}"


class RemoteResource(models.Model):
    """One Amazon Personalize resource of one event, as last seen: what the admin shows, what a
    resumed run describes instead of creating again, and what teardown deletes."""

    class Kind(models.TextChoices):
        DATASET_GROUP = "dataset_group", "Dataset group"
        INTERACTIONS_SCHEMA = "interactions_schema", "Interactions schema"
        ITEMS_SCHEMA = "items_schema", "Items schema"
        INTERACTIONS_DATASET = "interactions_dataset", "Interactions dataset"
        ITEMS_DATASET = "items_dataset", "Items dataset"
        EVENT_TRACKER = "event_tracker", "Event tracker"
        FILTER = "filter", "Filter"
        SOLUTION = "solution", "Solution"
        CAMPAIGN = "campaign", "Campaign"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="personalize_resources")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    name = models.CharField(max_length=63)
    arn = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=40, blank=True, help_text="As Personalize reports it, e.g. ACTIVE.")
    extra = models.JSONField(default=dict, blank=True, help_text="e.g. the event tracker's trackingId")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event", "kind"]
        verbose_name = "remote resource"
        constraints = [models.UniqueConstraint(fields=["event", "kind"], name="personalize_resource_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} ({self.status or 'not created'})"


class PersonalizeRun(TrainingRun):
    """Runs of kind personalize, batch (Personalize batch inference) and teardown."""

    class Meta:
        proxy = True
        verbose_name = "Personalize run"
