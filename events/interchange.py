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
import hashlib
import math
from collections.abc import Iterable, Iterator
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


# --- Reading --------------------------------------------------------------------------------------

MISSING_COLUMNS = "The header lacks {columns}; expected {header}."
WRONG_FIELD_COUNT = "expected {expected} fields, got {got}"
EMPTY_FIELD = "{column} is empty"
BAD_TIMESTAMP = "TIMESTAMP must be whole epoch seconds, got {value!r}"
BAD_VALUE = "EVENT_VALUE must be a number, got {value!r}"
NEGATIVE_EVENT_VALUE = "EVENT_VALUE cannot be negative, got {value!r}"


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (no header, required columns missing)."""


def read_interactions_csv(lines: Iterable[str]) -> Iterator[tuple[int, CsvInteraction | str]]:
    """Yield (line number, row) for each data row, or (line number, reason) for a row that cannot
    be read; streams, holding one row at a time. Columns are found by name in the header (in any
    order, extra columns ignored, as Personalize does). Raises CsvFormatError for a bad header."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise CsvFormatError(
            MISSING_COLUMNS.format(columns=", ".join(REQUIRED_COLUMNS), header=",".join(INTERACTIONS_HEADER))
        )
    names = [h.strip().upper() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise CsvFormatError(MISSING_COLUMNS.format(columns=", ".join(missing), header=",".join(INTERACTIONS_HEADER)))
    user_i, item_i, ts_i = (names.index(c) for c in REQUIRED_COLUMNS)
    type_i = names.index("EVENT_TYPE") if "EVENT_TYPE" in names else None
    value_i = names.index("EVENT_VALUE") if "EVENT_VALUE" in names else None
    width = len(names)
    for fields in reader:
        line = reader.line_num
        if not fields:
            continue  # a blank line
        if len(fields) != width:
            yield line, WRONG_FIELD_COUNT.format(expected=width, got=len(fields))
            continue
        user_id, item_id, raw_ts = fields[user_i], fields[item_i], fields[ts_i].strip()
        if not user_id:
            yield line, EMPTY_FIELD.format(column="USER_ID")
            continue
        if not item_id:
            yield line, EMPTY_FIELD.format(column="ITEM_ID")
            continue
        try:
            timestamp = int(raw_ts)
        except ValueError:
            yield line, BAD_TIMESTAMP.format(value=raw_ts)
            continue
        value = None
        raw_value = fields[value_i].strip() if value_i is not None else ""
        if raw_value:
            try:
                value = float(raw_value)
            except ValueError:
                yield line, BAD_VALUE.format(value=raw_value)
                continue
            if not math.isfinite(value):
                yield line, BAD_VALUE.format(value=raw_value)
                continue
            if value < 0:
                yield line, NEGATIVE_EVENT_VALUE.format(value=raw_value)
                continue
        event_type = fields[type_i].strip() if type_i is not None else ""
        yield line, CsvInteraction(user_id, item_id, timestamp, event_type, value)


def row_fingerprint(row: CsvInteraction) -> str:
    """A stable client event id for an imported row: the same row imported twice is the same
    interaction, so re-importing a file adds nothing."""
    value = "" if row.event_value is None else _format_number(row.event_value)
    key = "\x1f".join((row.user_id, row.item_id, str(row.timestamp), row.event_type, value))
    return "csv:" + hashlib.sha256(key.encode()).hexdigest()[:40]
