"""Live events to Amazon Personalize: qualifying interactions claimed by the ingestion outbox are
forwarded with PutEvents through the event tracker, once per committed batch.

Connected to `interactions_processing` (sent inside the outbox's claiming transaction), so a batch
is forwarded only after its claim commits, and a claim that rolls back forwards nothing."""

from django.db import transaction

from events.enums import Backend
from events.models import Event
from recommendations.backends.personalize.tasks import forward_interactions


def on_interactions_processing(sender, *, event_id: int, interaction_ids: list[int], **kwargs) -> None:
    if not Event.objects.filter(pk=event_id, backend=Backend.PERSONALIZE).exists():
        return
    ids = list(interaction_ids)
    transaction.on_commit(lambda: forward_interactions.delay(event_id=event_id, interaction_ids=ids))
