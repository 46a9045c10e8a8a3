"""Writes of the Personalize backend: starting runs, forwarding live interactions, erasure."""

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, StubResponseError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.enums import Backend, Phase
from events.models import Attendee, Event
from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.models import PersonalizeId, RemoteResource
from recommendations.backends.personalize.runs.machine import initial_steps
from recommendations.models import TrainingRun

logger = logging.getLogger(__name__)

Kind = TrainingRun.Kind
ACTIVE_STATUSES = (TrainingRun.Status.PENDING, TrainingRun.Status.RUNNING)
PUT_EVENTS_MAX = 10  # PutEvents accepts at most 10 events per call
PUT_ITEMS_MAX = 10

NOT_CONFIGURED = "Cannot start an Amazon Personalize run: {problem}"


class NotConfigured(Exception):
    pass


def _schedule_advance(run: TrainingRun) -> None:
    from recommendations.backends.personalize.tasks import (
        advance_run,  # tasks import services; the call goes the other way only here
    )

    advance_run.delay_on_commit(run_id=run.pk)


def personalize_run_start(*, event: Event, kind: str, trigger: str = "manual") -> TrainingRun:
    """Start a run of `kind` (personalize, batch or teardown) for the event, or return the one
    already in progress: two clicks on "retrain" make one run."""
    problem = clients.configuration_problem()
    if problem:
        raise NotConfigured(NOT_CONFIGURED.format(problem=problem))
    with transaction.atomic():
        Event.objects.select_for_update().filter(pk=event.pk).first()  # serialises concurrent starts
        existing = TrainingRun.objects.filter(event=event, kind=kind, status__in=ACTIVE_STATUSES).first()
        if existing and existing.steps and existing.steps[0]["name"] == initial_steps(kind)[0]["name"]:
            return existing
        run = TrainingRun.objects.create(event=event, kind=kind, trigger=trigger, steps=initial_steps(kind))
        _schedule_advance(run)
    return run


def last_training_started_at(event: Event) -> datetime | None:
    run = (
        TrainingRun.objects.filter(event=event, kind=Kind.PERSONALIZE, status=TrainingRun.Status.SUCCEEDED)
        .order_by("-started_at")
        .first()
    )
    return run.started_at if run else None


def new_training_interactions(event: Event) -> int:
    since = last_training_started_at(event)
    qs = mapping.training_interactions(event=event)
    return qs.filter(created_at__gt=since).count() if since else qs.count()


def personalize_retrain_if_due(*, event: Event, now: datetime | None = None) -> TrainingRun | None:
    """The scheduled retrain: only during the live window, only with enough new qualifying
    interactions since the last successful run, never alongside a run in progress."""
    now = now or timezone.now()
    if event.backend != Backend.PERSONALIZE or clients.configuration_problem():
        return None
    if not (event.live_starts_at and event.live_ends_at and event.live_starts_at <= now < event.live_ends_at):
        return None
    if TrainingRun.objects.filter(event=event, kind=Kind.PERSONALIZE, status__in=ACTIVE_STATUSES).exists():
        return None
    if new_training_interactions(event) < settings.PERSONALIZE_RETRAIN_MIN_NEW_INTERACTIONS:
        return None
    return personalize_run_start(event=event, kind=Kind.PERSONALIZE, trigger="schedule")


def personalize_batch_if_due(*, event: Event) -> TrainingRun | None:
    """The daily batch, while the event is on demand."""
    if event.backend != Backend.PERSONALIZE or clients.configuration_problem():
        return None
    if event.phase != Phase.ON_DEMAND:
        return None
    return personalize_run_start(event=event, kind=Kind.BATCH, trigger="schedule")


def personalize_teardown_if_due(*, event: Event, now: datetime | None = None) -> TrainingRun | None:
    """At close: delete everything, so that an idle campaign never keeps billing."""
    now = now or timezone.now()
    closed = event.phase == Phase.CLOSED or (event.on_demand_ends_at and event.on_demand_ends_at <= now)
    if not closed or not RemoteResource.objects.filter(event=event).exists() or clients.configuration_problem():
        return None
    return personalize_run_start(event=event, kind=Kind.TEARDOWN, trigger="schedule")


# --- Live events ------------------------------------------------------------------------------------


@dataclass
class ForwardResult:
    sent: int = 0
    calls: int = 0
    skipped: int = 0
    remaining: list[int] = field(default_factory=list)
    error: Exception | None = None


def forward_interactions(*, event_id: int, interaction_ids: list[int]) -> ForwardResult:
    """Send qualifying, training-consented interactions to the event tracker with PutEvents:
    one call per context (the context is the Personalize "user"), at most 10 events per call.

    Stops at the first failed call and reports the ids not yet sent in `remaining`, so that a
    retry re-sends only those (PutEvents has no idempotency key of its own). SIMS only learns from
    these at the next retrain; the local model answers "right now" in the meantime.
    """
    result = ForwardResult()
    event = Event.objects.filter(pk=event_id).first()
    if event is None or event.backend != Backend.PERSONALIZE:
        result.skipped = len(interaction_ids)
        return result
    tracker = RemoteResource.objects.filter(event=event, kind=RemoteResource.Kind.EVENT_TRACKER).first()
    tracking_id = (tracker.extra or {}).get("tracking_id") if tracker else None
    if not tracking_id:
        result.skipped = len(interaction_ids)  # no tracker yet: the next training export includes them
        return result
    rows = list(
        mapping.training_interactions(event=event)
        .filter(pk__in=interaction_ids)
        .values("id", "attendee_id", "room_id", "content_id", "interest_id", "type", "value", "occurred_at")
    )
    result.skipped = len(set(interaction_ids)) - len(rows)
    by_context: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_context[mapping.context_of(row)].append(row)
    tokens = {
        kind: mapping.ids_ensure(event=event, kind=kind, object_ids={oid for k, oid in by_context if k == kind})
        for kind in {k for k, _ in by_context}
    }
    tokens[mapping.Kind.ATTENDEE] = mapping.ids_ensure(
        event=event, kind=mapping.Kind.ATTENDEE, object_ids={r["attendee_id"] for r in rows}
    )
    threshold = mapping.event_value_threshold(event)
    client = clients.personalize_events()
    batches = []
    for (kind, oid), group in sorted(by_context.items()):
        for start in range(0, len(group), PUT_EVENTS_MAX):
            batches.append((tokens[kind][oid], group[start : start + PUT_EVENTS_MAX]))
    for index, (user_token, batch) in enumerate(batches):
        try:
            client.put_events(
                trackingId=tracking_id,
                userId=user_token,
                sessionId=user_token,
                eventList=[
                    {
                        "eventId": str(r["id"]),
                        "eventType": r["type"],
                        "eventValue": max(float(r["value"] or 0.0), threshold),  # as in the export
                        "itemId": tokens[mapping.Kind.ATTENDEE][r["attendee_id"]],
                        "sentAt": r["occurred_at"],
                    }
                    for r in batch
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, StubResponseError):
                raise  # botocore's Stubber: a call the code should not have made
            result.error = exc
            result.remaining = [r["id"] for _, b in batches[index:] for r in b]
            return result
        result.calls += 1
        result.sent += len(batch)
    return result


# --- Erasure ----------------------------------------------------------------------------------------


def personalize_erase_attendee(*, attendee: Attendee) -> TrainingRun | None:
    """Hide the attendee at once (PutItems sets VISIBILITY to hidden, which the filter excludes),
    mark their token erased so that no export carries them again, and queue a full re-import
    and retrain without them. Raises on an AWS error: an erasure must not silently half-happen."""
    event = attendee.event
    PersonalizeId.objects.filter(event=event, kind=PersonalizeId.Kind.ATTENDEE, object_id=attendee.pk).update(
        erased_at=timezone.now()
    )
    token = mapping.ids_lookup(event=event, kind=mapping.Kind.ATTENDEE, object_ids=[attendee.pk]).get(attendee.pk)
    items = RemoteResource.objects.filter(event=event, kind=RemoteResource.Kind.ITEMS_DATASET).first()
    if token is None or items is None or not items.arn:
        return None  # never sent to AWS: nothing to hide there
    clients.personalize_events().put_items(
        datasetArn=items.arn,
        items=[{"itemId": token, "properties": mapping.item_properties(event=event, visibility=mapping.HIDDEN)}],
    )
    return personalize_run_start(event=event, kind=Kind.PERSONALIZE, trigger="erasure")
