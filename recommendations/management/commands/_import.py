"""A minimal stand-in for `manage.py import_interactions --create-missing` (the ingestion branch's
command): reads the interactions CSV of `events.interchange`, creates missing rooms/content/tags
and attendees, and bulk-inserts the rows with `qualifies` computed by the event's thresholds.
Used only when that command is not installed; the evaluation prefers the real one."""

import csv
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from events.enums import ContextKind, InteractionSource
from events.interchange import parse_context_token
from events.models import Attendee, Content, Event, Interaction, InterestTag, Room
from events.services import interaction_qualifies


@transaction.atomic
def import_csv(*, event: Event, path: str) -> int:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    contexts = {parse_context_token(r["USER_ID"]) for r in rows}
    ids = {r["ITEM_ID"] for r in rows}
    attendees = dict(Attendee.objects.filter(event=event).values_list("external_id", "pk"))
    Attendee.objects.bulk_create(
        [Attendee(event=event, external_id=x, display_name=x) for x in sorted(ids - attendees.keys())],
        batch_size=2000,
    )
    attendees = dict(Attendee.objects.filter(event=event).values_list("external_id", "pk"))
    found: dict[str, dict[str, int]] = {}
    contexts_made: tuple[tuple[ContextKind, type[Model], str, Callable[[str], Model]], ...] = (
        (ContextKind.ROOM, Room, "external_id", lambda x: Room(event=event, external_id=x, name=x)),
        (ContextKind.CONTENT, Content, "external_id", lambda x: Content(event=event, external_id=x, title=x)),
        (ContextKind.INTEREST, InterestTag, "slug", lambda x: InterestTag(event=event, slug=x, label=x)),
    )
    for kind, model, key, make in contexts_made:
        wanted = {x for k, x in contexts if k == kind}
        have = dict(model._default_manager.filter(event=event).values_list(key, "pk"))
        model._default_manager.bulk_create([make(x) for x in sorted(wanted - have.keys())], batch_size=2000)
        found[kind] = dict(model._default_manager.filter(event=event).values_list(key, "pk"))
    now = timezone.now()
    objs = []
    for n, r in enumerate(rows):
        token_kind, ext = parse_context_token(r["USER_ID"])
        ctx = {
            ContextKind.ROOM: "room_id",
            ContextKind.CONTENT: "content_id",
            ContextKind.INTEREST: "interest_id",
        }[ContextKind(token_kind)]
        value = float(r["EVENT_VALUE"]) if r.get("EVENT_VALUE") else None
        type_ = r.get("EVENT_TYPE") or "join_room"
        objs.append(
            Interaction(
                event=event,
                attendee_id=attendees[r["ITEM_ID"]],
                type=type_,
                value=value,
                occurred_at=datetime.fromtimestamp(int(r["TIMESTAMP"]), tz=UTC),
                client_event_id=f"import-{n}-{r['USER_ID']}-{r['ITEM_ID']}",
                source=InteractionSource.IMPORT,
                qualifies=interaction_qualifies(event=event, type=type_, value=value),
                processed_at=now,
                **{ctx: found[token_kind][ext]},
            )
        )
    Interaction.objects.bulk_create(objs, batch_size=5000)
    return len(objs)
