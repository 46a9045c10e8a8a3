"""Amazon Personalize's interactions CSV, with this product's reverse mapping.

    USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE

USER_ID is the *context* (room, content item or interest tag) and ITEM_ID the *attendee*, because
attendees are the items of an item-to-item recommender here. TIMESTAMP is in epoch seconds. One row
is one complete interaction: a room visit is `join_room` with its dwell in seconds as EVENT_VALUE.

Context tokens: a room's external id as it is (the common case, so that a plain file of room visits
imports without ceremony), `content:<external id>`, `interest:<slug>`. A room id that itself holds
a colon is written `room:<id>`, so every token reads back as the context it came from.
"""

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from .enums import ContextKind

INTERACTIONS_HEADER = ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
REQUIRED_COLUMNS = INTERACTIONS_HEADER[:3]
_PREFIXES = {ContextKind.CONTENT: "content:", ContextKind.INTEREST: "interest:", ContextKind.ROOM: "room:"}


@dataclass(frozen=True)
class CsvInteraction:
    user_id: str  # the context token
    item_id: str  # the attendee's external id
    timestamp: int  # epoch seconds
    event_type: str = ""
    event_value: float | None = None


def context_token(kind: str, external_id: str) -> str:
    if kind == ContextKind.ROOM and ":" not in external_id:
        return external_id
    return f"{_PREFIXES[ContextKind(kind)]}{external_id}"


def parse_context_token(token: str) -> tuple[str, str]:
    """Return (context kind, external id) for a USER_ID."""
    for kind, prefix in _PREFIXES.items():
        if token.startswith(prefix):
            return kind.value, token[len(prefix) :]
    return ContextKind.ROOM.value, token


def write_interactions_csv(rows: Iterable[CsvInteraction], out: TextIO) -> int:
    """Write the header and rows; return the number of rows. Streams: never holds the rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INTERACTIONS_HEADER)
    count = 0
    for row in rows:
        value = "" if row.event_value is None else _format_number(row.event_value)
        writer.writerow([row.user_id, row.item_id, row.timestamp, row.event_type, value])
        count += 1
    return count


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
