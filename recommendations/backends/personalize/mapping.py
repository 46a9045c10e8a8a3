"""The reverse mapping and the files Personalize imports.

SIMS recommends items similar to an item, from which "users" interacted with both. Here the
attendees are the items (ITEM_ID) and the contexts they visit (rooms, content, interest tags) are
the users (USER_ID), so "items similar to attendee A" are the attendees whose context histories
overlap A's. Every id that leaves the database is a random token from `PersonalizeId`.
"""

import csv
import functools
import hashlib
import io
import json
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, TextIO

from django.db.models import QuerySet

from events.enums import ContextKind, InteractionType
from events.interchange import CsvInteraction, write_interactions_csv
from events.models import Attendee, Event, Interaction
from recommendations.backends.personalize.models import PersonalizeId

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
    # Many ids (an export): read all of the event's tokens of that kind rather than a huge IN list.
    tokens = ids_lookup(event=event, kind=kind, object_ids=None if len(wanted) > 1000 else wanted)
    missing = wanted - tokens.keys()
    if missing:
        PersonalizeId.objects.bulk_create(
            [PersonalizeId(event=event, kind=kind, object_id=oid, token=new_token()) for oid in missing],
            ignore_conflicts=True,
            batch_size=5000,
        )
        tokens.update(ids_lookup(event=event, kind=kind, object_ids=None if len(missing) > 1000 else missing))
    return {oid: tokens[oid] for oid in wanted}


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


def context_of(row: Mapping[str, Any]) -> tuple[str, int]:
    if row["room_id"]:
        return Kind.ROOM, row["room_id"]
    if row["content_id"]:
        return Kind.CONTENT, row["content_id"]
    return Kind.INTEREST, row["interest_id"]


@dataclass
class Export:
    """The two files, spooled to disk past a few megabytes, rewound and ready to upload."""

    interactions: IO[bytes]
    items: IO[bytes]
    n_interactions: int
    n_items: int
    fingerprint: str

    def close(self) -> None:
        self.interactions.close()
        self.items.close()


# Kept in memory up to this size, then on disk: a million interactions make about 60 MB of CSV.
SPOOL_BYTES = 16 * 1024 * 1024
_FIELDS = ("attendee_id", "room_id", "content_id", "interest_id", "type", "value", "occurred_at")


def _csv_rows(*, event: Event, rows: Iterable[tuple], tokens: dict) -> Iterator[CsvInteraction]:
    threshold = event_value_threshold(event)
    for attendee_id, room_id, content_id, interest_id, type_, value, occurred_at in rows:
        if room_id:
            user = tokens[Kind.ROOM][room_id]
        elif content_id:
            user = tokens[Kind.CONTENT][content_id]
        else:
            user = tokens[Kind.INTEREST][interest_id]
        yield CsvInteraction(
            user_id=user,
            item_id=tokens[Kind.ATTENDEE][attendee_id],
            timestamp=int(occurred_at.timestamp()),
            event_type=type_,
            # eventValueThreshold is one number for every event type. These rows all qualified
            # already by their own type's rule (content views after 30 s, questionnaire answers
            # with no dwell at all), so they are lifted to the room threshold rather than being
            # silently dropped by Personalize; room visits keep their real dwell.
            event_value=max(float(value or 0.0), threshold),
        )


def _spooled_text(write: Callable[[TextIO], int]) -> tuple[IO[bytes], int]:
    raw = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed to the caller, who closes it
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    count = write(text)
    text.flush()
    text.detach()  # keep `raw` open
    raw.seek(0)
    return raw, count


def _fingerprint(*files: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for f in files:
        for chunk in iter(functools.partial(f.read, 1 << 20), b""):
            digest.update(chunk)
        digest.update(b"\0")
        f.seek(0)
    return digest.hexdigest()


def export_build(*, event: Event) -> Export:
    """The interactions CSV and the items CSV of one event, with pseudonymous ids (created here
    for anyone who has none yet). Streams the interactions: memory does not grow with the event."""
    interactions = training_interactions(event=event)
    tokens: dict[str, dict[int, str]] = {}
    for kind, key in ((Kind.ROOM, "room_id"), (Kind.CONTENT, "content_id"), (Kind.INTEREST, "interest_id")):
        used = interactions.order_by().filter(**{f"{key}__isnull": False}).values_list(key, flat=True).distinct()
        tokens[kind] = ids_ensure(event=event, kind=kind, object_ids=used)
    attendees = list(
        Attendee.objects.filter(event=event)
        .exclude(pk__in=erased_attendee_ids(event=event))
        .order_by("pk")
        .values_list("pk", "consent_be_recommended")
    )
    tokens[Kind.ATTENDEE] = ids_ensure(event=event, kind=Kind.ATTENDEE, object_ids=[pk for pk, _ in attendees])
    rows = interactions.values_list(*_FIELDS).iterator(chunk_size=10_000)
    interactions_file, n_interactions = _spooled_text(
        lambda out: write_interactions_csv(_csv_rows(event=event, rows=rows, tokens=tokens), out)
    )
    etoken = event_token(event)

    def write_items(out: TextIO) -> int:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ITEMS_HEADER)
        for pk, visible in attendees:
            writer.writerow([tokens[Kind.ATTENDEE][pk], etoken, VISIBLE if visible else HIDDEN])
        return len(attendees)

    items_file, n_items = _spooled_text(write_items)
    return Export(
        interactions=interactions_file,
        items=items_file,
        n_interactions=n_interactions,
        n_items=n_items,
        fingerprint=_fingerprint(interactions_file, items_file),
    )


def item_properties(*, event: Event, visibility: str) -> str:
    """PutItems properties: the schema's fields in camelCase, as a JSON string."""
    return json.dumps({"eventId": event_token(event), "visibility": visibility})
