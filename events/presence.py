"""Presence: joins and leaves become room visits, with the dwell computed on the server.

A join opens a `RoomVisit`; its leave closes it, and the closed visit is recorded as one `join_room`
interaction whose value is the dwell in seconds (the same shape as an imported row), qualifying
only if the dwell passes the event's threshold (`Event.dwell_thresholds["join_room"]`, 60 s by
default). Short visits are kept, marked as not qualifying.

- Out of order: a leave that arrives before its join is kept as an open-ended visit
  (`joined_at` null); the join, when it comes, completes it if the leave is not earlier than it.
- Missing leave: a browser visit (`expects_heartbeats`) whose heartbeats stop for
  `HEARTBEAT_TIMEOUT` is closed at its last heartbeat; any visit still open when the event's live
  window ends is closed at the end of the window. Both by `room_visits_close_stale`, a periodic task.
- Idempotent: a join or leave carrying a client event id already seen changes nothing.

The browser's WebSocket consumer, the REST batch and the sweeper all call these same services.
Concurrent events of one attendee are serialised by a transaction-scoped advisory lock.
"""

import logging
import uuid
from datetime import datetime, timedelta
from typing import TypedDict

import django.dispatch
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from matchmaking_site.layer import group_send

from . import groups
from .enums import InteractionSource, InteractionType
from .models import Attendee, Event, Interaction, Room, RoomVisit
from .outbox import InteractionRow, interactions_insert
from .services import interaction_qualifies

logger = logging.getLogger(__name__)

# The browser sends a heartbeat every HEARTBEAT_INTERVAL; three missed ones mean it is gone
# (a closed laptop lid sends no disconnect).
HEARTBEAT_INTERVAL = timedelta(seconds=30)
HEARTBEAT_TIMEOUT = timedelta(seconds=90)

# Sent after commit whenever an attendee enters or leaves a room (a visit opened or closed), with
# `event_id`, `attendee_id`, `room_id` and `entered` (bool). `recommendations` listens: "here now"
# changes who is worth meeting. Sent robustly: the visit is already committed.
presence_changed = django.dispatch.Signal()

# Who is in which room now, for the whole event: {attendee_id: room_id, or None when online in the
# lobby}; `recommendations` reads it on every request, so "here now" is never staler than it.
# Rebuilt from the open visits after every change, so a lost write is repaired
# by the next one; the TTL only bounds how long a snapshot survives if every writer stops.
PRESENCE_CACHE_KEY = "presence:{event_id}"
PRESENCE_CACHE_TTL = 3600

# Namespace of the advisory locks taken here (first key of pg_advisory_xact_lock(int, int)).
_LOCK_NAMESPACE = 0x7072  # "pr"


def _lock_attendee(attendee_id: int) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite, the embedded default, serialises all writers already
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, attendee_id % 2**31])


def _is_duplicate(*, event: Event, client_event_id: str, field: str) -> bool:
    if not client_event_id:
        return False
    return (
        RoomVisit.objects.filter(event=event, **{field: client_event_id}).exists()
        or Interaction.objects.filter(event=event, client_event_id=client_event_id).exists()
    )


def _visit_close(*, event: Event, visit: RoomVisit, left_at: datetime, reason: str) -> RoomVisit:
    """Close `visit` at `left_at` and record it as a `join_room` interaction valued by its dwell."""
    joined_at = visit.joined_at
    assert joined_at is not None  # only joined visits are closed: every caller selects or sets joined_at
    left_at = max(left_at, joined_at)
    visit.left_at = left_at
    visit.close_reason = reason
    dwell = (left_at - joined_at).total_seconds()
    client_event_id = visit.join_client_event_id or f"visit:{visit.pk}"
    inserted = interactions_insert(
        event_id=event.pk,
        source=visit.source,
        rows=[
            InteractionRow(
                attendee_id=visit.attendee_id,
                room_id=visit.room_id,
                content_id=None,
                interest_id=None,
                type=InteractionType.JOIN_ROOM,
                value=dwell,
                occurred_at=joined_at,
                client_event_id=client_event_id,
                qualifies=interaction_qualifies(event=event, type=InteractionType.JOIN_ROOM, value=dwell),
            )
        ],
    )
    visit.interaction_id = inserted.get(client_event_id)
    visit.save(update_fields=["left_at", "close_reason", "interaction"])
    _announce_on_commit(event_id=event.pk, attendee_id=visit.attendee_id, room_id=visit.room_id, entered=False)
    return visit


def present_in_rooms(*, event_id: int) -> dict[int, int]:
    """Attendees in a room of the event now -> that room (the latest they entered, if several)."""
    rows = (
        RoomVisit.objects.filter(event_id=event_id, left_at__isnull=True, joined_at__isnull=False)
        .order_by("joined_at", "id")
        .values_list("attendee_id", "room_id")
    )
    return dict(rows)


_PUBLISH_NAMESPACE = 0x7073  # "ps": one lock per event around read-then-write of its snapshot


def presence_publish(*, event_id: int) -> dict[int, int]:
    """Rebuild the event's presence snapshot in the cache from the open visits; return it.

    Read and write happen under a per-event lock: otherwise two changes committed together could
    each read the database, and the one that read *before* the other's commit could write last,
    leaving the snapshot without the other change (and its push computed on a stale "here now").
    With the lock, the last writer always read after every commit that preceded it."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_PUBLISH_NAMESPACE, event_id % 2**31])
        present = present_in_rooms(event_id=event_id)
        cache.set(PRESENCE_CACHE_KEY.format(event_id=event_id), present, timeout=PRESENCE_CACHE_TTL)
    return present


def presence_snapshot(*, event_id: int) -> dict[int, int]:
    """The event's presence snapshot from the cache, rebuilt when it is not there."""
    present = cache.get(PRESENCE_CACHE_KEY.format(event_id=event_id))
    return present if present is not None else presence_publish(event_id=event_id)


class Occupant(TypedDict):
    external_id: str
    display_name: str


def room_occupants(*, event_id: int, room_id: int, present: dict[int, int] | None = None) -> list[Occupant]:
    """Who is in the room now, by name (for the room page)."""
    present = present_in_rooms(event_id=event_id) if present is None else present
    ids = [pk for pk, room in present.items() if room == room_id]
    return list(Attendee.objects.filter(pk__in=ids).order_by("display_name").values("external_id", "display_name"))


def room_count(*, room_id: int, present: dict[int, int]) -> int:
    return sum(1 for room in present.values() if room == room_id)


def _announce(*, event_id: int, attendee_id: int, room_id: int, entered: bool) -> None:
    present = presence_publish(event_id=event_id)
    layer = get_channel_layer()
    if layer is not None:
        person = Attendee.objects.filter(pk=attendee_id).values("external_id", "display_name").first()
        if person is not None:
            change: dict[str, object] = {"joined": person} if entered else {"left": person["external_id"]}
            group_send(
                groups.room_group(event_id, room_id),
                {"type": groups.ROOM_PRESENCE, **change, "count": room_count(room_id=room_id, present=present)},
            )
    for receiver, result in presence_changed.send_robust(
        sender=None, event_id=event_id, attendee_id=attendee_id, room_id=room_id, entered=entered
    ):
        if isinstance(result, Exception):
            logger.error("presence_changed receiver %r failed", receiver, exc_info=result)


def _announce_on_commit(*, event_id: int, attendee_id: int, room_id: int, entered: bool) -> None:
    transaction.on_commit(
        lambda: _announce(event_id=event_id, attendee_id=attendee_id, room_id=room_id, entered=entered)
    )


@transaction.atomic
def presence_join(
    *,
    event: Event,
    attendee_id: int,
    room_id: int,
    at: datetime,
    client_event_id: str = "",
    expects_heartbeats: bool = False,
    source: str = InteractionSource.LIVE,
) -> tuple[RoomVisit | None, bool]:
    """Record that an attendee joined a room; return (visit, duplicate). The caller has checked that
    attendee and room belong to `event`."""
    _lock_attendee(attendee_id)
    if _is_duplicate(event=event, client_event_id=client_event_id, field="join_client_event_id"):
        return None, True
    # A leave that overtook this join: the earliest one not before the join completes the visit.
    orphan = (
        RoomVisit.objects.filter(
            attendee_id=attendee_id, room_id=room_id, joined_at__isnull=True, left_at__gte=at, event=event
        )
        .order_by("left_at", "id")
        .first()
    )
    if orphan is not None:
        assert orphan.left_at is not None  # selected by left_at__gte
        orphan.joined_at = at
        orphan.last_heartbeat_at = at
        orphan.join_client_event_id = client_event_id
        orphan.save(update_fields=["joined_at", "last_heartbeat_at", "join_client_event_id"])
        return _visit_close(
            event=event, visit=orphan, left_at=orphan.left_at, reason=RoomVisit.CloseReason.LEAVE
        ), False
    visit = RoomVisit.objects.create(
        event=event,
        attendee_id=attendee_id,
        room_id=room_id,
        joined_at=at,
        last_heartbeat_at=at,
        join_client_event_id=client_event_id,
        expects_heartbeats=expects_heartbeats,
        source=source,
    )
    _announce_on_commit(event_id=event.pk, attendee_id=attendee_id, room_id=room_id, entered=True)
    return visit, False


@transaction.atomic
def presence_leave(
    *,
    event: Event,
    attendee_id: int,
    room_id: int,
    at: datetime,
    client_event_id: str = "",
    visit_id: int | None = None,
) -> tuple[RoomVisit | None, bool]:
    """Record that an attendee left a room; return (visit, duplicate). Closes the latest open visit
    that started no later than `at` (or exactly `visit_id`, for the WebSocket that opened it); with
    none, keeps the leave until its join arrives."""
    _lock_attendee(attendee_id)
    if _is_duplicate(event=event, client_event_id=client_event_id, field="leave_client_event_id"):
        return None, True
    open_visits = RoomVisit.objects.filter(
        event=event, attendee_id=attendee_id, room_id=room_id, left_at__isnull=True, joined_at__isnull=False
    )
    open_visits = open_visits.filter(pk=visit_id) if visit_id is not None else open_visits.filter(joined_at__lte=at)
    visit = open_visits.order_by("-joined_at", "-id").first()
    if visit is None:
        if visit_id is not None:
            return None, False  # already closed by the sweeper: nothing more to record
        orphan = RoomVisit.objects.create(
            event=event, attendee_id=attendee_id, room_id=room_id, left_at=at, leave_client_event_id=client_event_id
        )
        return orphan, False
    visit.leave_client_event_id = client_event_id
    visit.save(update_fields=["leave_client_event_id"])
    return _visit_close(event=event, visit=visit, left_at=at, reason=RoomVisit.CloseReason.LEAVE), False


def presence_heartbeat(*, visit_id: int, at: datetime | None = None) -> bool:
    """Keep a browser visit alive; return False if it was already closed (the client should rejoin)."""
    at = at or timezone.now()
    return bool(RoomVisit.objects.filter(pk=visit_id, left_at__isnull=True).update(last_heartbeat_at=at))


def room_visits_close_stale(*, now: datetime | None = None) -> int:
    """Close visits whose heartbeats stopped (at their last heartbeat) and visits still open when
    their event's live window ended (at its end); return how many were closed."""
    now = now or timezone.now()
    stale = Q(expects_heartbeats=True, last_heartbeat_at__lt=now - HEARTBEAT_TIMEOUT) | Q(event__live_ends_at__lte=now)
    closed = 0
    candidates = list(
        RoomVisit.objects.filter(stale, left_at__isnull=True, joined_at__isnull=False).values_list("pk", flat=True)
    )
    for pk in candidates:
        with transaction.atomic():
            visit = (
                RoomVisit.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .filter(pk=pk, left_at__isnull=True)
                .first()
            )
            if visit is None:
                continue  # closed meanwhile by its leave, or being closed by another worker
            _lock_attendee(visit.attendee_id)
            live_end = visit.event.live_ends_at
            ends = []
            heartbeat = visit.last_heartbeat_at  # set with joined_at, so never None here
            if visit.expects_heartbeats and heartbeat is not None and heartbeat < now - HEARTBEAT_TIMEOUT:
                ends.append((heartbeat, RoomVisit.CloseReason.TIMEOUT))
            if live_end is not None and live_end <= now:
                ends.append((live_end, RoomVisit.CloseReason.LIVE_WINDOW_END))
            left_at, reason = min(ends)
            _visit_close(event=visit.event, visit=visit, left_at=left_at, reason=reason)
            closed += 1
    return closed


# --- The browser path (WebSocket consumer) ----------------------------------------------------------


def presence_browser_join(*, user_id: int, event_slug: str, room_external_id: str) -> RoomVisit | None:
    """Open a heartbeat-kept visit for the signed-in user's attendee in that room, now; None when the
    user is no attendee of that event or the room is not one of its rooms."""
    attendee = Attendee.objects.filter(user_id=user_id, event__slug=event_slug).select_related("event").first()
    if attendee is None:
        return None
    room = Room.objects.filter(event=attendee.event, external_id=room_external_id).first()
    if room is None:
        return None
    visit, _ = presence_join(
        event=attendee.event,
        attendee_id=attendee.pk,
        room_id=room.pk,
        at=timezone.now(),
        client_event_id=f"ws:{uuid.uuid4()}",
        expects_heartbeats=True,
    )
    return visit


def presence_browser_leave(*, visit_id: int) -> RoomVisit | None:
    """Close the visit a WebSocket opened, now (its disconnect). A visit the sweeper already
    closed stays as the sweeper closed it."""
    visit = RoomVisit.objects.select_related("event").filter(pk=visit_id).first()
    if visit is None:
        return None
    closed, _ = presence_leave(
        event=visit.event,
        attendee_id=visit.attendee_id,
        room_id=visit.room_id,
        at=timezone.now(),
        client_event_id=f"ws-leave:{visit.join_client_event_id or visit.pk}",
        visit_id=visit.pk,
    )
    return closed
