"""An event's matchmaking phase, and the rules that move it forward.

    cold -> live        enough qualifying interactions (>= event.qualifying_threshold) AND enough
                        contexts with two or more qualifying interactions (>= event.min_active_contexts),
                        while the live window has not ended. The window's start is not required: a
                        pre-event questionnaire can carry an event past the threshold, and then the
                        model has something to say before the doors open.
    cold -> on_demand   the live window ended before the threshold was met (the batch is then
                        computed from whatever source the live chain falls back to).
    live -> on_demand   the live window ended.
    on_demand -> closed the on-demand window ended.

Going live starts a training run, going on demand a batch run (after commit). Phases only move
forward. Each move is a `PhaseTransition` row with its time and cause, written in
the same transaction as the event's new phase, under a row lock, so two workers refreshing at
once record it once. Several moves can happen in one refresh (an event imported after it ended
goes cold -> on_demand -> closed), each recorded.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from events.enums import Phase
from events.models import Event, Interaction, PhaseTransition

CAUSE_THRESHOLD = (
    "{qualifying:,} qualifying interactions >= threshold {threshold:,}; "
    "{contexts:,} contexts with 2+ qualifying interactions >= {min_contexts:,}"
)
CAUSE_LIVE_ENDED = "Live window ended at {at:%Y-%m-%d %H:%M} UTC"
CAUSE_ON_DEMAND_ENDED = "On-demand window ended at {at:%Y-%m-%d %H:%M} UTC"


def qualifying_interaction_count(*, event: Event) -> int:
    return Interaction.objects.filter(event=event, qualifies=True).count()


def active_context_count(*, event: Event) -> int:
    """Contexts (room, content item or interest tag) with two or more qualifying interactions:
    a context one attendee touched links nobody to anybody."""
    return (
        Interaction.objects.filter(event=event, qualifies=True)
        .values("room_id", "content_id", "interest_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .count()
    )


def _next(*, event: Event, now: datetime) -> tuple[str, str] | None:
    """(next phase, cause), or None when the event stays where it is."""
    live_over = event.live_ends_at is not None and now >= event.live_ends_at
    if event.phase == Phase.COLD:
        if live_over:
            return Phase.ON_DEMAND, CAUSE_LIVE_ENDED.format(at=event.live_ends_at)
        qualifying = qualifying_interaction_count(event=event)
        # The grouped count costs a scan; skip it until the cheap count passes.
        if qualifying < event.qualifying_threshold:
            return None
        contexts = active_context_count(event=event)
        if contexts < event.min_active_contexts:
            return None
        return Phase.LIVE, CAUSE_THRESHOLD.format(
            qualifying=qualifying,
            threshold=event.qualifying_threshold,
            contexts=contexts,
            min_contexts=event.min_active_contexts,
        )
    if event.phase == Phase.LIVE and live_over:
        return Phase.ON_DEMAND, CAUSE_LIVE_ENDED.format(at=event.live_ends_at)
    if event.phase == Phase.ON_DEMAND and event.on_demand_ends_at is not None and now >= event.on_demand_ends_at:
        return Phase.CLOSED, CAUSE_ON_DEMAND_ENDED.format(at=event.on_demand_ends_at)
    return None


@transaction.atomic
def event_refresh_phase(*, event: Event, now: datetime | None = None) -> list[PhaseTransition]:
    """Move `event` through every phase change that is due at `now`; return the transitions made.

    Saving the event bumps its cache stamp (see `recommendations.live.receivers`), so every list is
    recomputed from the new phase's source on its next read."""
    now = now or timezone.now()
    event = Event.objects.select_for_update().get(pk=event.pk)
    transitions = []
    while (step := _next(event=event, now=now)) is not None:
        to_phase, cause = step
        transitions.append(
            PhaseTransition.objects.create(event=event, from_phase=event.phase, to_phase=to_phase, cause=cause, at=now)
        )
        event.phase = to_phase
        event.phase_changed_at = now
    if transitions:
        event.save(update_fields=["phase", "phase_changed_at"])
        _start_phase_work(event=event, phases={t.to_phase for t in transitions})
    return transitions


def _start_phase_work(*, event: Event, phases: set[str]) -> None:
    """What a new phase needs at once rather than at the next tick of its schedule: going live
    trains the first model (until it is published, the live chain falls back to the rules);
    going on demand fills the batch table. Sent after commit, so a rolled-back refresh sends nothing."""
    # Imported here: tasks import this module.
    from recommendations.jobs.tasks import batch_event, train_event

    if Phase.LIVE in phases:
        train_event.delay_on_commit(event_id=event.pk, trigger="phase")
    if Phase.ON_DEMAND in phases and Phase.CLOSED not in phases:
        batch_event.delay_on_commit(event_id=event.pk, trigger="phase")
