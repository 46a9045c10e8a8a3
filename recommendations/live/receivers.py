"""Reactions to changes in `events/` that touch suggestions. Connected in `apps.ready`.

`events/` must not import this app, so instead of being called by its services we listen to the
model signals of the rows they write. That also catches every other path (the admin, a shell, a
future service): whatever creates a block, the blocked attendee leaves both lists at once.

- Block, Connection (any change), NotRelevant: bump the stamps of the attendees involved.
- Attendee: a change of `consent_be_recommended` or `consent_training` can touch every list of
  the event -> bump the event; a change of `consent_receive_recommendations` or of the external
  id, or a deletion -> bump that attendee (the API caches who a caller's URL names under these
  stamps too); a new name, headline or company shows in other people's lists -> bump the event
  and push to the open widgets that show them (a rename used to linger for the cache's lifetime).
- Event: any save (phase change, backend, cache TTLs, exposure share) -> bump the event, and
  re-sync its periodic tasks after commit; a deleted event is bumped and takes its periodic tasks
  with it.
- ModelVersion becoming published -> bump the event (new lists from the new model).
- Connection created / accepted -> funnel stages "requested" / "accepted".
- Attendee erased -> bump the event; on Personalize, hide them remotely and queue a retrain.

Live push (`recommendations.live.push`), always after commit:
- Block, Connection, NotRelevant, a consent change: push to the attendees involved (a block
  removes each from the other's open widget at once).
- `events.signals.interactions_processing` (sent in the Celery worker that claims a committed
  batch, inside its claiming transaction): once that claim commits, apply the batch to the live
  model and push to the attendees whose neighbour lists it recomputed (the organizers' engagement
  counts are the dashboard's own receiver). This runs in the workers, not in the web processes that wrote the rows: the
  model update is CPU-bound Python, and in a web process it held the GIL that every request of
  that process needs (a load run at 200 interactions/s lost most of the serving capacity to it).
  The recomputed lists go to the shared cache (`local.realtime_key`), where every web process
  reads them; pushes reach the browsers through the channel layer (Redis) from any process. In the
  embedded default the "worker" is the web process itself (Celery runs eagerly), and `run_soon`
  keeps the work off the request thread there as before.
- `events.presence.presence_changed`: push to the attendee who moved, to everyone in that room
  and to everyone whose open widget shows the mover ("here now" changed for them).
"""

from typing import Any, cast

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from events.enums import Backend, ConnectionStatus, MeetingStatus
from events.models import Attendee, Block, Connection, Event, Meeting, NotRelevant
from events.presence import presence_changed
from events.privacy import attendee_erasing
from events.signals import declared_changed, facts_changed, interactions_processing
from recommendations.backends.local.realtime import realtime_recompute
from recommendations.backends.personalize.services import personalize_erase_attendee
from recommendations.backends.rules import allow_map_invalidate, rules_index_outdate
from recommendations.live.push import suggestions_push, suggestions_push_on_commit
from recommendations.live.runner import Coalescer, run_soon
from recommendations.live.state import watchers_showing
from recommendations.models import MatchmakingRule, ModelVersion
from recommendations.serving.cache import attendee_cache_invalidate, event_cache_invalidate, present_attendee_ids
from recommendations.serving.funnel import Stage, funnel_record, funnel_record_meeting


@receiver([post_save, post_delete], sender=Block)
def _block_changed(sender, instance: Block, **kwargs):
    attendee_cache_invalidate(attendee_ids=[instance.blocker_id, instance.blocked_id])
    suggestions_push_on_commit(attendee_ids=[instance.blocker_id, instance.blocked_id])


@receiver([post_save, post_delete], sender=NotRelevant)
def _not_relevant_changed(sender, instance: NotRelevant, **kwargs):
    attendee_cache_invalidate(attendee_ids=[instance.attendee_id])
    suggestions_push_on_commit(attendee_ids=[instance.attendee_id])


@receiver([post_save, post_delete], sender=Connection)
def _connection_changed(sender, instance: Connection, created: bool = False, **kwargs):
    attendee_cache_invalidate(attendee_ids=[instance.requester_id, instance.recipient_id])
    suggestions_push_on_commit(attendee_ids=[instance.requester_id, instance.recipient_id])
    if kwargs.get("signal") is post_delete:
        return
    if created:
        funnel_record(viewer_id=instance.requester_id, suggested_id=instance.recipient_id, stage=Stage.REQUESTED)
    elif instance.status == ConnectionStatus.ACCEPTED:
        funnel_record(viewer_id=instance.requester_id, suggested_id=instance.recipient_id, stage=Stage.ACCEPTED)


@receiver(post_save, sender=Meeting)
def _meeting_changed(sender, instance: Meeting, update_fields=None, **kwargs):
    # The funnel's last two stages, once each: the save that books (its status) and the one that
    # makes it held (its held_at). Other saves (a check-in of one, a cancellation) record nothing.
    fields = set(update_fields or ())
    if "status" in fields and instance.status == MeetingStatus.BOOKED:
        stage = Stage.BOOKED
    elif "held_at" in fields and instance.held_at is not None:
        stage = Stage.HELD
    else:
        return
    funnel_record_meeting(requester_id=instance.requester_id, recipient_id=instance.recipient_id, stage=stage)


@receiver(pre_save, sender=Attendee)
def _attendee_consents_before(sender, instance: Attendee, **kwargs):
    # One indexed read per attendee save, to learn which consent (or the external id) changed;
    # attendee saves are profile edits, rare next to reads of suggestions. Kept on the instance for
    # the post_save receiver below: an attribute of this module's own, not a field of the model.
    cast(Any, instance)._consents_before = (
        Attendee.objects.filter(pk=instance.pk)
        .values_list(
            "consent_be_recommended",
            "consent_receive_recommendations",
            "consent_training",
            "external_id",
            "group",
            "display_name",
            "headline",
            "company",
        )
        .first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=Attendee)
def _attendee_consents_after(sender, instance: Attendee, created: bool, **kwargs):
    before = getattr(instance, "_consents_before", None)
    if created or before is None:
        return
    be_recommended, receive, training, external_id, group, *shown_as = before
    # "Be recommended", "use my activity" and the group (who may meet whom) decide whether they
    # appear in others' lists.
    everyone = (
        be_recommended != instance.consent_be_recommended
        or training != instance.consent_training
        or group != instance.group
    )
    if everyone:
        event_cache_invalidate(event_id=instance.event_id)
    if receive != instance.consent_receive_recommendations or external_id != instance.external_id:
        # A new external id: the API's cached caller -> attendee entry of the old one must go too.
        attendee_cache_invalidate(attendee_ids=[instance.pk])
    if everyone or receive != instance.consent_receive_recommendations:
        suggestions_push_on_commit(attendee_ids=[instance.pk])
    if shown_as != [instance.display_name, instance.headline, instance.company]:
        # Their card in other people's lists: every cached list of the event may hold it.
        event_cache_invalidate(event_id=instance.event_id)
        event_id, shown_id = instance.event_id, instance.external_id
        transaction.on_commit(lambda: run_soon(_renamed_push, event_id=event_id, external_id=shown_id))


def _renamed_push(*, event_id: int, external_id: str) -> None:
    suggestions_push(attendee_ids=watchers_showing(event_id=event_id, external_id=external_id))


@receiver([post_save, post_delete], sender=MatchmakingRule)
def _rule_changed(sender, instance: MatchmakingRule, raw: bool = False, **kwargs):
    # Every list of the event may change: "who may meet whom" filters every source, and weights and
    # boosts reorder the rules engine's lists.
    if raw:
        return
    allow_map_invalidate(event_id=instance.event_id)
    event_cache_invalidate(event_id=instance.event_id)


@receiver(post_save, sender=Event)
def _event_changed(sender, instance: Event, created: bool, raw: bool = False, **kwargs):
    event_cache_invalidate(event_id=instance.pk)
    if raw:  # loaddata: no side effects beyond the cache
        return
    # Imported here: schedules imports django_celery_beat models, which need the app registry.
    from recommendations.jobs.schedules import event_schedules_sync

    event_id = instance.pk
    transaction.on_commit(lambda: event_schedules_sync(event=Event.objects.get(pk=event_id)))


@receiver(post_save, sender=ModelVersion)
def _model_version_changed(sender, instance: ModelVersion, **kwargs):
    if instance.status == ModelVersion.Status.PUBLISHED:
        event_cache_invalidate(event_id=instance.event_id)


@receiver(post_delete, sender=Event)
def _event_deleted(sender, instance: Event, **kwargs):
    from recommendations.jobs.schedules import event_schedules_delete

    event_cache_invalidate(event_id=instance.pk)
    event_schedules_delete(event=instance)


@receiver(post_delete, sender=Attendee)
def _attendee_deleted(sender, instance: Attendee, **kwargs):
    # Nothing cached for them (their list, the API's caller -> attendee entry) may serve again.
    attendee_cache_invalidate(attendee_ids=[instance.pk])


@receiver(attendee_erasing)
def _attendee_erasing(sender, attendee: Attendee, **kwargs):
    """An erased attendee leaves every list of the event at once, and a remote model stops
    serving them (Personalize hides them through the items dataset and retrains without them)."""
    event_cache_invalidate(event_id=attendee.event_id)
    if attendee.event.backend == Backend.PERSONALIZE:
        personalize_erase_attendee(attendee=attendee)


@receiver(interactions_processing)
def _interactions_processing(sender, event_id: int, interaction_ids: list[int], **kwargs):
    # Inside the worker's claiming transaction: wait for it to commit. A claim that rolls back is
    # retried by the sweeper, and must not have updated the model or pushed in the meantime.
    transaction.on_commit(lambda: run_soon(interactions_push, event_id=event_id, interaction_ids=interaction_ids))


def interactions_push(*, event_id: int, interaction_ids: list[int]) -> None:
    """The batch into the live model; diffs to the attendees whose neighbour lists it recomputed.
    Runs where the batch is processed (a Celery worker; see the module docstring)."""
    recomputed = realtime_recompute(event_id=event_id, interaction_ids=interaction_ids)
    if recomputed:
        suggestions_push(attendee_ids=recomputed, invalidate=True)


@receiver(declared_changed)
def _declared_changed(sender, event_id: int, attendee_id: int, **kwargs):
    # Their own list (the rules engine reads the viewer's declarations fresh) and, through the
    # rules index (outdated here, rebuilt at its next use), theirs in others' lists.
    rules_index_outdate(event_id=event_id)
    event_cache_invalidate(event_id=event_id)
    run_soon(suggestions_push, attendee_ids=[attendee_id])


@receiver(facts_changed)
def _facts_changed(sender, event_id: int, kind: str, ids: list[int], **kwargs):
    # A platform's bulk upsert (after commit). Any list of the event may show what changed (a name,
    # a topic's label in a reason, a consent or a group: who may meet whom), so all of them go;
    # changed attendees' own widgets are pushed (their declarations and consents are their list's).
    allow_map_invalidate(event_id=event_id)
    if sender is Attendee:
        rules_index_outdate(event_id=event_id)  # declarations, groups: who is a candidate for whom
    event_cache_invalidate(event_id=event_id)
    if sender is Attendee:
        run_soon(suggestions_push, attendee_ids=ids)


@receiver(presence_changed)
def _presence_changed(sender, event_id: int, attendee_id: int, room_id: int, entered: bool, **kwargs):
    run_soon(presence_push, event_id=event_id, attendee_id=attendee_id, room_id=room_id)


def presence_push(*, event_id: int, attendee_id: int, room_id: int) -> None:
    """Diffs to the attendee who moved and to everyone in that room at once ("in your room"
    changed for them), and to whoever else sees the mover in their list (their "online" badge
    changed) within WATCHER_PUSH_SECONDS, gathered: one push per widget for every mover of that
    window, however many. The snapshot was just rebuilt from the database by the presence
    service."""
    present = present_attendee_ids(Event(pk=event_id))
    in_room = [attendee_id, *(pk for pk, room in present.items() if room == room_id)]
    suggestions_push(attendee_ids=in_room)
    external_id = Attendee.objects.filter(pk=attendee_id).values_list("external_id", flat=True).first()
    showing = watchers_showing(event_id=event_id, external_id=external_id) if external_id else []
    _watchers.add(set(showing) - set(in_room))


# A badge elsewhere can wait a moment; the mover's room cannot (see `Coalescer`).
WATCHER_PUSH_SECONDS = 1.0


def _watchers_push(*, ids: list[int]) -> None:
    suggestions_push(attendee_ids=ids)


_watchers = Coalescer(_watchers_push, WATCHER_PUSH_SECONDS)
