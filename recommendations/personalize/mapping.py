"""The reverse mapping and the files Personalize imports.

SIMS recommends items similar to an item, from which "users" interacted with both. Here the
attendees are the items (ITEM_ID) and the contexts they visit (rooms, content, interest tags) are
the users (USER_ID), so "items similar to attendee A" are the attendees whose context histories
overlap A's. Every id that leaves the database is a random token from `PersonalizeId`.
"""

import io
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from events.enums import ContextKind, InteractionType
from events.interchange import CsvInteraction, write_interactions_csv
from events.models import Attendee, Event, Interaction

from .models import PersonalizeId

ITEMS_HEADER = ["ITEM_ID", "EVENT_ID", "VISIBILITY"]
VISIBLE = "visible"
HIDDEN = "hidden"

Kind = PersonalizeId.Kind
_CONTEXT_KIND = {ContextKind.ROOM: Kind.ROOM, ContextKind.CONTENT: Kind.CONTENT, ContextKind.INTEREST: Kind.INTEREST}


def new_token() -> str:
    return secrets.token_hex(8)


def ids_ensure(*, event: Event, kind: str, object_ids: Iterable[int]) -> dict[int, str]:
    """Token of each object, creating the missing ones. Safe under concurrency: the unique
    constraint decides, and the loser reads the winner's token."""
    wanted = set(object_ids)
    tokens = ids_lookup(event=event, kind=kind, object_ids=wanted)
    missing = wanted - tokens.keys()
    if missing:
        PersonalizeId.objects.bulk_create(
            [PersonalizeId(event=event, kind=kind, object_id=oid, token=new_token()) for oid in missing],
            ignore_conflicts=True,
        )
        tokens.update(ids_lookup(event=event, kind=kind, object_ids=missing))
    return tokens


def ids_lookup(*, event: Event, kind: str, object_ids: Iterable[int] | None = None) -> dict[int, str]:
    qs = PersonalizeId.objects.filter(event=event, kind=kind)
    if object_ids is not None:
        qs = qs.filter(object_id__in=list(object_ids))
    return dict(qs.values_list("object_id", "token"))


def event_token(event: Event) -> str:
    return ids_ensure(event=event, kind=Kind.EVENT, object_ids=[event.pk])[event.pk]


def attendees_for_tokens(*, event: Event, tokens: Iterable[str]) -> dict[str, int]:
    """Attendee id of each known, not erased token of this event (tokens of other events are dropped)."""
    return dict(
        PersonalizeId.objects.filter(
            event=event, kind=Kind.ATTENDEE, token__in=list(tokens), erased_at__isnull=True
        ).values_list("token", "object_id")
    )


def erased_attendee_ids(*, event: Event) -> set[int]:
    return set(
        PersonalizeId.objects.filter(event=event, kind=Kind.ATTENDEE, erased_at__isnull=False).values_list(
            "object_id", flat=True
        )
    )


def training_interactions(*, event: Event) -> QuerySet[Interaction]:
    """What may be sent for training: qualifying interactions of attendees who consented to
    training and were not erased."""
    return (
        Interaction.objects.filter(event=event, qualifies=True, attendee__consent_training=True)
        .exclude(attendee_id__in=erased_attendee_ids(event=event))
        .order_by("occurred_at", "id")
    )


def event_value_threshold(event: Event) -> float:
    """The room dwell threshold, which the solution passes to Personalize as eventValueThreshold."""
    return event.dwell_threshold(InteractionType.JOIN_ROOM)


def _context(row: dict) -> tuple[str, int]:
    if row["room_id"]:
        return Kind.ROOM, row["room_id"]
    if row["content_id"]:
        return Kind.CONTENT, row["content_id"]
    return Kind.INTEREST, row["interest_id"]


@dataclass(frozen=True)
class Export:
    interactions_csv: bytes
    items_csv: bytes
    n_interactions: int
    n_items: int


def _csv_rows(*, event: Event, rows: Iterable[dict], tokens: dict) -> Iterator[CsvInteraction]:
    threshold = event_value_threshold(event)
    for row in rows:
        kind, oid = _context(row)
        yield CsvInteraction(
            user_id=tokens[kind][oid],
            item_id=tokens[Kind.ATTENDEE][row["attendee_id"]],
            timestamp=int(row["occurred_at"].timestamp()),
            event_type=row["type"],
            # eventValueThreshold is one number for every event type. These rows all qualified
            # already by their own type's rule (content views after 30 s, questionnaire answers
            # with no dwell at all), so they are lifted to the room threshold rather than being
            # silently dropped by Personalize; room visits keep their real dwell.
            event_value=max(float(row["value"] or 0.0), threshold),
        )


_FIELDS = ("attendee_id", "room_id", "content_id", "interest_id", "type", "value", "occurred_at")


def export_build(*, event: Event) -> Export:
    """The interactions CSV and the items CSV of one event, with pseudonymous ids (created here
    for anyone who has none yet)."""
    rows = list(training_interactions(event=event).values(*_FIELDS))
    tokens: dict[str, dict[int, str]] = {}
    for kind, key in ((Kind.ROOM, "room_id"), (Kind.CONTENT, "content_id"), (Kind.INTEREST, "interest_id")):
        tokens[kind] = ids_ensure(event=event, kind=kind, object_ids={r[key] for r in rows if r[key]})
    attendees = list(
        Attendee.objects.filter(event=event)
        .exclude(pk__in=erased_attendee_ids(event=event))
        .order_by("pk")
        .values_list("pk", "consent_be_recommended")
    )
    tokens[Kind.ATTENDEE] = ids_ensure(event=event, kind=Kind.ATTENDEE, object_ids=[pk for pk, _ in attendees])

    interactions = io.StringIO()
    n_interactions = write_interactions_csv(_csv_rows(event=event, rows=rows, tokens=tokens), interactions)

    etoken = event_token(event)
    items = io.StringIO()
    items.write(",".join(ITEMS_HEADER) + "\n")
    for pk, visible in attendees:
        items.write(f"{tokens[Kind.ATTENDEE][pk]},{etoken},{VISIBLE if visible else HIDDEN}\n")
    return Export(
        interactions_csv=interactions.getvalue().encode(),
        items_csv=items.getvalue().encode(),
        n_interactions=n_interactions,
        n_items=len(attendees),
    )


def item_properties(*, event: Event, visibility: str) -> str:
    """PutItems properties: the schema's fields in camelCase, as a JSON string."""
    return json.dumps({"eventId": event_token(event), "visibility": visibility})
