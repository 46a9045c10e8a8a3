"""Batch ingestion of interactions: validate each item, resolve ids set-based, insert once.

One bad item never rejects its neighbours: every item gets a status, `accepted`, `duplicate` (its
client event id was recorded before, or repeats an earlier item of the same batch) or `rejected`
with a reason (the constants below, which tests reuse). The work is set-based so that a batch of
500 costs a handful of queries whatever its content: one to resolve attendees, one per context kind
present, one INSERT ... ON CONFLICT DO NOTHING RETURNING for the rows (see `events.outbox`).

Presence events take the presence path (`events.presence`), one item at a time: a `join_room`
without a value opens a room visit, a `leave_room` closes one, and the closed visit is recorded as
one `join_room` interaction valued by its dwell. A `join_room` *with* a value is an already complete
visit (what an import row holds) and is recorded as it is.

Timestamps: `occurred_at` must fall inside the event window, from the start of the live window to
the end of the on-demand window (or of the live window if there is none), widened by `CLOCK_SKEW`
on each side for the clocks of the platforms that send us events; and no later than now plus the
same skew. Questionnaire answers are exempt from the window (they are given before the event).
"""

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from . import presence
from .enums import ContextKind, InteractionSource, InteractionType
from .interchange import CsvInteraction, parse_context_token, row_fingerprint
from .models import Attendee, Content, Event, InterestTag, Room
from .outbox import InteractionRow, interactions_insert
from .services import NEGATIVE_VALUE, dwell_passes

MAX_BATCH = 500
CLOCK_SKEW = timedelta(minutes=5)
MAX_ID_LENGTH = 128

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"

NOT_AN_OBJECT = "An interaction must be a JSON object."
REQUIRED = "{field} is required."
NOT_AN_ID = "{field} must be a non-empty string of at most 128 characters."
# PostgreSQL's text cannot hold NUL: refused here, per field, not left to fail the whole batch.
NUL_IN_TEXT = "{field} must not contain NUL characters."
# An error quotes at most this much of the bad value (a 100 KB value is not echoed back whole).
QUOTED_CHARS = 100
UNKNOWN_TYPE = "Unknown interaction type {value}; expected one of: " + ", ".join(InteractionType.values) + "."
UNKNOWN_CONTEXT_KIND = "Unknown context kind {value}; expected one of: " + ", ".join(ContextKind.values) + "."
ROOM_TYPE_NEEDS_ROOM = "{type} needs a room context, not {kind}."
NOT_A_NUMBER = "value must be a number."
NOT_A_TIMESTAMP = "occurred_at must be an ISO 8601 date-time with a time zone, or epoch seconds."
OUTSIDE_WINDOW = "occurred_at {at} is outside the event window {start} .. {end} (allowing {skew} s of clock skew)."
IN_FUTURE = "occurred_at {at} is in the future (more than {skew} s ahead of the server clock)."
UNKNOWN_ATTENDEE = "Unknown attendee {id!r} in event {event!r}."
ATTENDEE_OF_OTHER_EVENT = "Attendee {id!r} belongs to another event, not to {event!r}."
UNKNOWN_CONTEXT = "Unknown {kind} {id!r} in event {event!r}."
REPEATED_IN_BATCH = "Repeats item {index} of this batch."
ALREADY_RECORDED = "Already recorded."

ROOM_TYPES = frozenset({InteractionType.JOIN_ROOM.value, InteractionType.LEAVE_ROOM.value})
# Plain sets: `TextChoices.values` rebuilds its list on every access, which a 500-item batch feels.
TYPES = frozenset(InteractionType.values)
CONTEXT_KINDS = frozenset(ContextKind.values)
_CONTEXT_MODELS = {
    ContextKind.ROOM.value: (Room, "external_id"),
    ContextKind.CONTENT.value: (Content, "external_id"),
    ContextKind.INTEREST.value: (InterestTag, "slug"),
}


@dataclass(slots=True)
class PendingInteraction:
    """One parsed item, not yet resolved against the database."""

    index: int
    client_event_id: str
    attendee: str  # external id
    context_kind: str
    context: str  # external id (slug for an interest tag)
    type: str
    value: float | None
    occurred_at: datetime


@dataclass(slots=True)
class ItemResult:
    index: int
    client_event_id: str | None
    status: str
    reason: str = ""

    def as_dict(self) -> dict:
        out = {"index": self.index, "client_event_id": self.client_event_id, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        return out


# --- Parsing ---------------------------------------------------------------------------------------


def _id(raw: dict, field: str) -> str:
    value = raw.get(field)
    if value is None:
        raise ValueError(REQUIRED.format(field=field))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(NOT_AN_ID.format(field=field))
    if "\x00" in value:
        raise ValueError(NUL_IN_TEXT.format(field=field))
    return value


def quoted(value) -> str:
    """`value` as an error message quotes it: at most QUOTED_CHARS characters of its repr."""
    text = repr(value)
    return text if len(text) <= QUOTED_CHARS else text[: QUOTED_CHARS - 3] + "..."


def parse_timestamp(value) -> datetime:
    """ISO 8601 with a time zone, or epoch seconds (int or float). Naive times are refused: a
    platform's local time would silently shift every interaction."""
    if isinstance(value, bool):
        raise ValueError(NOT_A_TIMESTAMP)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(NOT_A_TIMESTAMP)
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(NOT_A_TIMESTAMP) from exc
    if not isinstance(value, str):
        raise ValueError(NOT_A_TIMESTAMP)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(NOT_A_TIMESTAMP) from exc
    if parsed.tzinfo is None:
        raise ValueError(NOT_A_TIMESTAMP)
    return parsed


def parse_value(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(NOT_A_NUMBER)
    if value < 0:
        raise ValueError(NEGATIVE_VALUE)
    return float(value)


def check_kind_and_type(*, type: str, kind: str) -> None:
    if type not in TYPES:
        raise ValueError(UNKNOWN_TYPE.format(value=quoted(type)))
    if kind not in CONTEXT_KINDS:
        raise ValueError(UNKNOWN_CONTEXT_KIND.format(value=quoted(kind)))
    if type in ROOM_TYPES and kind != ContextKind.ROOM:
        raise ValueError(ROOM_TYPE_NEEDS_ROOM.format(type=type, kind=kind))


def parse_item(index: int, raw) -> PendingInteraction:
    """Turn one JSON item into a PendingInteraction, or raise ValueError with the reason."""
    if not isinstance(raw, dict):
        raise ValueError(NOT_AN_OBJECT)
    client_event_id = _id(raw, "client_event_id")
    attendee = _id(raw, "attendee_id")
    context = _id(raw, "context_id")
    kind = raw.get("context_kind")
    type_ = raw.get("type")
    if type_ is None:
        raise ValueError(REQUIRED.format(field="type"))
    if kind is None:
        raise ValueError(REQUIRED.format(field="context_kind"))
    if not isinstance(type_, str):
        raise ValueError(UNKNOWN_TYPE.format(value=quoted(type_)))
    if not isinstance(kind, str):
        raise ValueError(UNKNOWN_CONTEXT_KIND.format(value=quoted(kind)))
    check_kind_and_type(type=type_, kind=kind)
    if "occurred_at" not in raw:
        raise ValueError(REQUIRED.format(field="occurred_at"))
    return PendingInteraction(
        index=index,
        client_event_id=client_event_id,
        attendee=attendee,
        context_kind=kind,
        context=context,
        type=type_,
        value=parse_value(raw.get("value")),
        occurred_at=parse_timestamp(raw["occurred_at"]),
    )


# --- The window -----------------------------------------------------------------------------------


def event_window(event: Event) -> tuple[datetime | None, datetime | None]:
    """(earliest, latest) accepted occurred_at, skew included; None where the event sets no bound."""
    start = event.live_starts_at - CLOCK_SKEW if event.live_starts_at else None
    end_at = event.on_demand_ends_at or event.live_ends_at
    end = end_at + CLOCK_SKEW if end_at else None
    return start, end


def window_reason(*, item: PendingInteraction, window, now: datetime) -> str:
    at = item.occurred_at
    if at > now + CLOCK_SKEW:
        return IN_FUTURE.format(at=at.isoformat(), skew=int(CLOCK_SKEW.total_seconds()))
    if item.type == InteractionType.QUESTIONNAIRE:
        return ""
    start, end = window
    if (start is not None and at < start) or (end is not None and at > end):
        return OUTSIDE_WINDOW.format(
            at=at.isoformat(),
            start=(start + CLOCK_SKEW).isoformat() if start else "-",
            end=(end - CLOCK_SKEW).isoformat() if end else "-",
            skew=int(CLOCK_SKEW.total_seconds()),
        )
    return ""


# --- Resolution and recording -----------------------------------------------------------------------


def _pk_map(model, field: str, *, event: Event, values: Iterable[str]) -> dict[str, int]:
    """{value of `field`: pk} for the rows of `model` in `event` whose `field` is among `values`."""
    values = list(set(values))
    if not values:
        return {}
    if connection.vendor == "postgresql":
        # One array parameter bound on the server: Django's `__in` would build (and psycopg's
        # client-side binding re-parse) a statement with thousands of placeholders on imports.
        table = model._meta.db_table
        column = model._meta.get_field(field).column
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f'SELECT "{column}", id FROM "{table}" WHERE event_id = %s AND "{column}" = ANY(%b::text[])',
                [event.pk, values],
            )
            return dict(cursor.fetchall())
    return dict(model.objects.filter(event=event, **{f"{field}__in": values}).values_list(field, "pk"))


def resolve_attendees(*, event: Event, external_ids: Iterable[str]) -> dict[str, int]:
    return _pk_map(Attendee, "external_id", event=event, values=external_ids)


def resolve_contexts(*, event: Event, wanted: dict[str, set[str]]) -> dict[str, dict[str, int]]:
    """{kind: {external id: pk}} for the contexts of `event`; one query per kind present."""
    found: dict[str, dict[str, int]] = {}
    for kind, ids in wanted.items():
        model, field = _CONTEXT_MODELS[kind]
        found[kind] = _pk_map(model, field, event=event, values=ids)
    return found


def _attendees_of_other_events(*, event: Event, external_ids: set[str]) -> set[str]:
    """Which unknown attendee ids belong to another event of the same organization. Looked up only
    within the organization: telling a caller that an id exists elsewhere must not leak across tenants."""
    if not external_ids:
        return set()
    return set(
        Attendee.objects.filter(event__organization_id=event.organization_id, external_id__in=external_ids)
        .exclude(event=event)
        .values_list("external_id", flat=True)
    )


def interactions_ingest(
    *,
    event: Event,
    items: Sequence[PendingInteraction],
    source: str = InteractionSource.LIVE,
    now: datetime | None = None,
    check_window: bool = True,
    route_presence: bool = True,
) -> list[ItemResult]:
    """Validate, resolve and record a batch of parsed items for `event`, in one transaction.
    Returns one result per item, in the order given. Items must have distinct client event ids
    (`ingest_payload` marks repeats first). With `route_presence` off (imports, whose rows are
    complete interactions), joins and leaves are recorded as they are instead of opening visits."""
    now = now or timezone.now()
    window = event_window(event)
    results: dict[int, ItemResult] = {}

    def reject(item: PendingInteraction, reason: str) -> None:
        results[item.index] = ItemResult(item.index, item.client_event_id, REJECTED, reason)

    live: list[PendingInteraction] = []
    for item in items:
        reason = window_reason(item=item, window=window, now=now) if check_window else ""
        if reason:
            reject(item, reason)
        else:
            live.append(item)

    attendees = resolve_attendees(event=event, external_ids=(i.attendee for i in live))
    unknown = {i.attendee for i in live if i.attendee not in attendees}
    elsewhere = _attendees_of_other_events(event=event, external_ids=unknown)
    wanted: dict[str, set[str]] = defaultdict(set)
    for item in live:
        wanted[item.context_kind].add(item.context)
    contexts = resolve_contexts(event=event, wanted=wanted)

    thresholds: dict[str, float] = {}

    def qualifies(type_: str, value: float | None) -> bool:
        if type_ not in thresholds:
            thresholds[type_] = event.dwell_threshold(type_)
        return dwell_passes(threshold=thresholds[type_], value=value)

    rows: list[InteractionRow] = []
    row_items: list[PendingInteraction] = []
    presence_items: list[tuple[PendingInteraction, int, int]] = []
    for item in live:
        attendee_id = attendees.get(item.attendee)
        if attendee_id is None:
            template = ATTENDEE_OF_OTHER_EVENT if item.attendee in elsewhere else UNKNOWN_ATTENDEE
            reject(item, template.format(id=item.attendee, event=event.slug))
            continue
        context_id = contexts[item.context_kind].get(item.context)
        if context_id is None:
            reject(item, UNKNOWN_CONTEXT.format(kind=item.context_kind, id=item.context, event=event.slug))
            continue
        if route_presence and (
            item.type == InteractionType.LEAVE_ROOM or (item.type == InteractionType.JOIN_ROOM and item.value is None)
        ):
            presence_items.append((item, attendee_id, context_id))
            continue
        kind = item.context_kind
        rows.append(
            InteractionRow(
                attendee_id=attendee_id,
                room_id=context_id if kind == ContextKind.ROOM else None,
                content_id=context_id if kind == ContextKind.CONTENT else None,
                interest_id=context_id if kind == ContextKind.INTEREST else None,
                type=item.type,
                value=item.value,
                occurred_at=item.occurred_at,
                client_event_id=item.client_event_id,
                qualifies=qualifies(item.type, item.value),
            )
        )
        row_items.append(item)

    with transaction.atomic():
        inserted = interactions_insert(event_id=event.pk, rows=rows, source=source)
        for item in row_items:
            if item.client_event_id in inserted:
                results[item.index] = ItemResult(item.index, item.client_event_id, ACCEPTED)
            else:
                results[item.index] = ItemResult(item.index, item.client_event_id, DUPLICATE, ALREADY_RECORDED)
        # By attendee (stable, so each attendee's events keep their order): concurrent batches take
        # the per-attendee presence locks in the same order and cannot deadlock.
        presence_items.sort(key=lambda entry: entry[1])
        for item, attendee_id, room_id in presence_items:
            service = presence.presence_join if item.type == InteractionType.JOIN_ROOM else presence.presence_leave
            _, duplicate = service(
                event=event,
                attendee_id=attendee_id,
                room_id=room_id,
                at=item.occurred_at,
                client_event_id=item.client_event_id,
            )
            status = DUPLICATE if duplicate else ACCEPTED
            results[item.index] = ItemResult(item.index, item.client_event_id, status, ALREADY_RECORDED * duplicate)
    return [results[item.index] for item in items]


def ingest_payload(*, event: Event, payload: Sequence, source: str = InteractionSource.LIVE) -> list[ItemResult]:
    """Parse raw JSON items, mark repeats within the batch, record the rest; one result per item."""
    results: list[ItemResult | None] = [None] * len(payload)
    pending: list[PendingInteraction] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(payload):
        try:
            item = parse_item(index, raw)
        except ValueError as exc:
            client_event_id = raw.get("client_event_id") if isinstance(raw, dict) else None
            if not isinstance(client_event_id, str):
                client_event_id = None
            results[index] = ItemResult(index, client_event_id, REJECTED, str(exc))
            continue
        seen = first_index.setdefault(item.client_event_id, index)
        if seen != index:
            results[index] = ItemResult(index, item.client_event_id, DUPLICATE, REPEATED_IN_BATCH.format(index=seen))
            continue
        pending.append(item)
    for result in interactions_ingest(event=event, items=pending, source=source):
        results[result.index] = result
    return results  # type: ignore[return-value]


# --- Bulk import (Amazon Personalize's interactions CSV) --------------------------------------------

# A row without EVENT_TYPE is what its context most plainly means.
DEFAULT_TYPES = {
    ContextKind.ROOM.value: InteractionType.JOIN_ROOM.value,
    ContextKind.CONTENT.value: InteractionType.VIEW_CONTENT.value,
    ContextKind.INTEREST.value: InteractionType.QUESTIONNAIRE.value,
}
# Rows per transaction and per set of resolving queries: big enough to amortise the queries, small
# enough that memory stays flat whatever the file size.
IMPORT_CHUNK = 5000
EMPTY_CONTEXT = "USER_ID {token!r} names no context"
TIMESTAMP_OUT_OF_RANGE = "TIMESTAMP {value} is out of range"


@dataclass
class ImportStats:
    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0


class ImportAborted(Exception):
    """--strict: the first bad row stops the import, and nothing of it is kept."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def pending_from_csv(line: int, row: CsvInteraction) -> PendingInteraction:
    """One CSV row as a PendingInteraction (index = its line number), or ValueError with the reason."""
    kind, external_id = parse_context_token(row.user_id)
    if not external_id:
        raise ValueError(EMPTY_CONTEXT.format(token=row.user_id))
    if len(external_id) > MAX_ID_LENGTH:
        raise ValueError(NOT_AN_ID.format(field="USER_ID"))
    if len(row.item_id) > MAX_ID_LENGTH:
        raise ValueError(NOT_AN_ID.format(field="ITEM_ID"))
    type_ = row.event_type or DEFAULT_TYPES[kind]
    check_kind_and_type(type=type_, kind=kind)
    try:
        occurred_at = datetime.fromtimestamp(row.timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(TIMESTAMP_OUT_OF_RANGE.format(value=row.timestamp)) from exc
    return PendingInteraction(
        index=line,
        client_event_id=row_fingerprint(row),
        attendee=row.item_id,
        context_kind=kind,
        context=external_id,
        type=type_,
        value=row.event_value,
        occurred_at=occurred_at,
    )


def _create_missing(*, event: Event, items: Sequence[PendingInteraction]) -> None:
    """Create the attendees and contexts `items` name that `event` lacks (import --create-missing).
    Named by their external id; an organizer can complete them later."""
    wanted_attendees = {i.attendee for i in items}
    known = resolve_attendees(event=event, external_ids=wanted_attendees)
    Attendee.objects.bulk_create(
        [Attendee(event=event, external_id=x, display_name=x) for x in sorted(wanted_attendees - known.keys())],
        ignore_conflicts=True,
    )
    wanted: dict[str, set[str]] = defaultdict(set)
    for item in items:
        wanted[item.context_kind].add(item.context)
    known_contexts = resolve_contexts(event=event, wanted=wanted)
    builders = {
        ContextKind.ROOM.value: lambda x: Room(event=event, external_id=x, name=x),
        ContextKind.CONTENT.value: lambda x: Content(event=event, external_id=x, title=x),
        ContextKind.INTEREST.value: lambda x: InterestTag(event=event, slug=x, label=x),
    }
    for kind, ids in wanted.items():
        missing = sorted(ids - known_contexts[kind].keys())
        if missing:
            _CONTEXT_MODELS[kind][0]._default_manager.bulk_create(
                [builders[kind](x) for x in missing], ignore_conflicts=True
            )


def interactions_import(
    *,
    event: Event,
    rows: Iterable[tuple[int, CsvInteraction | str]],
    create_missing: bool = False,
    strict: bool = False,
    on_rejected: Callable[[int, str], None] = lambda line, reason: None,
    on_chunk: Callable[[], None] = lambda: None,
    chunk_size: int = IMPORT_CHUNK,
) -> ImportStats:
    """Import rows (from `interchange.read_interactions_csv`) into `event` as source=import, in
    chunks of `chunk_size` with one transaction each, calling `on_rejected(line, reason)` for each
    bad row. Memory holds one chunk. With `strict`, the whole import is one transaction and the
    first bad row raises ImportAborted, which rolls everything back."""
    stats = ImportStats()
    # Rows rejected while parsing wait for their chunk, so that bad rows are reported in line order.
    parse_rejections: list[tuple[int, str]] = []

    def flush(chunk: list[PendingInteraction]) -> None:
        if create_missing and chunk:
            _create_missing(event=event, items=chunk)
        rejections = parse_rejections[:]
        parse_rejections.clear()
        for result in interactions_ingest(
            event=event, items=chunk, source=InteractionSource.IMPORT, route_presence=False
        ):
            if result.status == REJECTED:
                rejections.append((result.index, result.reason))
            elif result.status == ACCEPTED:
                stats.accepted += 1
            else:
                stats.duplicate += 1
        rejections.sort()
        stats.rejected += len(rejections)
        if strict and rejections:
            raise ImportAborted(*rejections[0])
        for line, reason in rejections:
            on_rejected(line, reason)
        on_chunk()

    def run() -> None:
        chunk: list[PendingInteraction] = []
        seen: set[str] = set()
        for line, row in rows:
            stats.rows += 1
            try:
                if isinstance(row, str):
                    raise ValueError(row)
                item = pending_from_csv(line, row)
            except ValueError as exc:
                parse_rejections.append((line, str(exc)))
                if strict:
                    flush(chunk)  # an earlier row of the chunk may be the first bad one
                continue
            if item.client_event_id in seen:
                stats.duplicate += 1  # the same row twice in one chunk: one interaction
                continue
            seen.add(item.client_event_id)
            chunk.append(item)
            if len(chunk) >= chunk_size:
                flush(chunk)
                chunk, seen = [], set()
        if chunk or parse_rejections:
            flush(chunk)

    if strict:
        with transaction.atomic():
            run()
    else:
        run()
    return stats
