"""CSV exports of the dashboard: engagement (every interaction) and suggestions (the batch table).
Streamed from a server-side cursor, so a million rows hold one chunk in memory at a time."""

from collections.abc import Iterable, Iterator

from events.models import Attendee, Event, Interaction
from recommendations.models import BatchRecommendation

ENGAGEMENT_HEADER = [
    "occurred_at",
    "attendee_id",
    "attendee_name",
    "context_kind",
    "context_id",
    "context_name",
    "type",
    "value",
    "qualifies",
    "source",
]
SUGGESTIONS_HEADER = [
    "attendee_id",
    "attendee_name",
    "rank",
    "suggested_id",
    "suggested_name",
    "score",
    "source",
    "model_version",
    "reasons",
    "computed_at",
]
CHUNK = 5000


class Echo:
    """A file-like object whose write returns the line: what csv.writer needs to stream."""

    def write(self, value: str) -> str:
        return value


# A cell a spreadsheet would read as a formula starts with one of these (OWASP, "CSV Injection"):
# such a text cell is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(row: list) -> list:
    """The row with every text cell that could run as a formula neutralised (numbers, dates and
    booleans are not text and pass as they are). WHY here: these files are opened by organizers in
    spreadsheets, and names come from attendees (`=HYPERLINK(...)` as a display name)."""
    return [f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell for cell in row]


def with_header(header: list[str], rows: Iterable[list]) -> Iterator[list]:
    yield header
    for row in rows:
        yield spreadsheet_safe(row)


def engagement_rows(*, event: Event) -> tuple[list[str], Iterator[list]]:
    qs = (
        Interaction.objects.filter(event=event)
        .order_by("occurred_at", "id")
        .values_list(
            "occurred_at",
            "attendee__external_id",
            "attendee__display_name",
            "room__external_id",
            "room__name",
            "content__external_id",
            "content__title",
            "interest__slug",
            "interest__label",
            "type",
            "value",
            "qualifies",
            "source",
        )
    )

    def rows() -> Iterator[list]:
        for at, aid, name, room, room_name, content, title, tag, label, type_, value, qualifies, source in qs.iterator(
            chunk_size=CHUNK
        ):
            if room is not None:
                kind, cid, cname = "room", room, room_name
            elif content is not None:
                kind, cid, cname = "content", content, title
            else:
                kind, cid, cname = "interest", tag, label
            yield [
                at.isoformat(),
                aid,
                name,
                kind,
                cid,
                cname,
                type_,
                "" if value is None else value,
                qualifies,
                source,
            ]

    return ENGAGEMENT_HEADER, rows()


def suggestions_rows(*, event: Event) -> tuple[list[str], Iterator[list]]:
    names = {
        pk: (ext, name)
        for pk, ext, name in Attendee.objects.filter(event=event).values_list("pk", "external_id", "display_name")
    }
    qs = (
        BatchRecommendation.objects.filter(event=event)
        .order_by("attendee__display_name", "attendee_id")
        .values_list("attendee_id", "items", "source", "model_version__number", "computed_at")
    )

    def rows() -> Iterator[list]:
        for viewer, items, source, version, computed_at in qs.iterator(chunk_size=500):
            vext, vname = names.get(viewer, ("", ""))
            for rank, item in enumerate(items, start=1):
                sext, sname = names.get(item.get("attendee_id"), ("", ""))
                reasons = "; ".join(r.get("text", "") for r in item.get("reasons") or [])
                yield [
                    vext,
                    vname,
                    rank,
                    sext,
                    sname,
                    round(float(item.get("score", 0.0)), 4),
                    source,
                    version or "",
                    reasons,
                    computed_at.isoformat(),
                ]

    return SUGGESTIONS_HEADER, rows()


EXPORTS = {"engagement": engagement_rows, "suggestions": suggestions_rows}
