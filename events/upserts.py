"""Idempotent bulk upserts of an event's facts by their external ids: what an external platform
registers before it sends interactions about them (attendees, rooms and sessions, content, topics).

One batch, one status per item, in request order: `created`, `updated`, `unchanged` (sending the
same item again writes nothing) or `rejected` with a reason. One bad item never rejects the others.
Merge semantics: the fields an item holds are set, the ones it leaves out keep their value (a new
row takes the model's defaults); a list (`interests`, `topics`, `planned_rooms`...) replaces the
whole set. References are by the ids the platform knows: topics by slug, rooms by external id, and
must exist already (upsert topics before what is tagged with them; rooms before content and plans),
so a typo is refused instead of creating a stray topic.

Set-based, like interaction ingestion: a batch of 500 costs a handful of queries whatever it holds
(one to read the rows it names, one per kind of reference, one per relation for the current links,
then one INSERT, one UPDATE and the link changes). Items are validated by the caller (the API's
item serializers); this module resolves references, decides the status, and writes.

Side effects after commit, through `events.signals.facts_changed` (recommendations/ listens):
cached lists of the event are dropped and changed attendees' open widgets pushed. Changed
declarations of attendees are rewritten as questionnaire rows here (the next training sees them).
Deletion is not an upsert: an attendee leaves through the privacy erasure path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from .models import Attendee, Content, Event, InterestTag, Room
from .questionnaire import questionnaire_hydrate
from .signals import facts_changed

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
REJECTED = "rejected"
STATUSES = (CREATED, UPDATED, UNCHANGED, REJECTED)

REPEATED = "{key} {value!r} is already in this batch (item {first}); send one item per {key}."
REQUIRED_ON_CREATE = "{field} is required to create a new {kind}."
UNKNOWN_TOPICS = "{field}: no topic with slug {missing} in this event; upsert it at /interest-tags/ first."
UNKNOWN_ROOMS = "{field}: no room with external id {missing} in this event; upsert it at /rooms/ first."
ENDS_BEFORE_START = "ends_at ({ends}) is before starts_at ({starts})."
QUOTED_MISSING = 3  # unknown references quoted in a reason, at most


@dataclass(frozen=True)
class UpsertResult:
    index: int
    key: str | None
    status: str
    reason: str = ""

    def as_dict(self, key_name: str) -> dict:
        out: dict[str, Any] = {"index": self.index, key_name: self.key, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Kind:
    """What one kind of fact is made of, for the generic upsert below."""

    name: str  # "attendee", as a reason names it
    model: type[models.Model]
    key: str  # the field the platform identifies a row by, unique per event
    fields: tuple[str, ...]  # plain fields an item may set
    required: tuple[str, ...]  # of them, needed to create a row
    topics: tuple[str, ...] = ()  # many-to-many to InterestTag, given as slugs
    rooms: tuple[str, ...] = ()  # many-to-many to Room, given as external ids
    room_fk: tuple[str, ...] = ()  # foreign key to Room, given as an external id (or null)
    touch: tuple[str, ...] = field(default=())  # auto_now fields to set on an update

    @property
    def relations(self) -> tuple[str, ...]:
        return self.topics + self.rooms


ATTENDEES = Kind(
    "attendee",
    Attendee,
    "external_id",
    (
        "display_name",
        "headline",
        "company",
        "role",
        "group",
        "consent_be_recommended",
        "consent_receive_recommendations",
        "consent_training",
        "email",
        "email_meetings",
        "email_digest",
        "language",
    ),
    required=("display_name",),
    topics=("interests", "offers", "seeks"),
    rooms=("planned_rooms",),
    touch=("updated_at",),
)
ROOMS = Kind(
    "room",
    Room,
    "external_id",
    ("name", "description", "track", "starts_at", "ends_at"),
    required=("name",),
    topics=("topics",),
)
CONTENTS = Kind(
    "content item",
    Content,
    "external_id",
    ("title", "kind", "duration_seconds"),
    required=("title",),
    topics=("topics",),
    room_fk=("room",),
)
INTEREST_TAGS = Kind("topic", InterestTag, "slug", ("label",), required=("label",))

# What an attendee's lists depend on: a change of any of these drops the event's cached lists.
DECLARED = ("interests", "offers", "seeks", "planned_rooms")


@dataclass
class _Plan:
    """What one batch will write: rows to create and update, and link changes per relation."""

    create: list[models.Model] = field(default_factory=list)
    create_links: list[tuple[models.Model, str, set[int]]] = field(default_factory=list)
    update: list[models.Model] = field(default_factory=list)
    update_fields: set[str] = field(default_factory=set)
    relinked: set[int] = field(default_factory=set)  # pks of rows whose links alone changed
    add: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    remove: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    declared: set[int] = field(default_factory=set)  # attendee pks whose declarations changed


def upsert(*, event: Event, kind: Kind, items: Sequence[dict]) -> list[UpsertResult]:
    """Upsert validated items (dicts of the kind's fields, the key always present) of one batch.
    Retried once when a concurrent batch created one of the same rows first: the second pass
    finds it and updates it."""
    try:
        return _upsert(event, kind, items)
    except IntegrityError:
        return _upsert(event, kind, items)


def _upsert(event: Event, kind: Kind, items: Sequence[dict]) -> list[UpsertResult]:
    model = kind.model
    keys = [item[kind.key] for item in items]
    with transaction.atomic():
        existing = {
            getattr(row, kind.key): row
            for row in model._default_manager.select_for_update().filter(event=event, **{f"{kind.key}__in": keys})
        }
        topics = _lookup(InterestTag, event, "slug", _referenced(items, kind.topics))
        rooms = _lookup(Room, event, "external_id", _referenced(items, kind.rooms + kind.room_fk))
        links = {name: _links(model, name, [row.pk for row in existing.values()]) for name in kind.relations}
        plan = _Plan()
        results: list[UpsertResult] = []
        first_at: dict[str, int] = {}
        for index, item in enumerate(items):
            key = item[kind.key]
            if key in first_at:
                results.append(
                    UpsertResult(index, key, REJECTED, REPEATED.format(key=kind.key, value=key, first=first_at[key]))
                )
                continue
            first_at[key] = index
            try:
                status = _plan_item(event, kind, item, existing.get(key), topics, rooms, links, plan)
            except ValueError as exc:
                results.append(UpsertResult(index, key, REJECTED, str(exc)))
                continue
            results.append(UpsertResult(index, key, status))
        _write(kind, plan)
        changed = [r.pk for r in plan.create] + [r.pk for r in plan.update] + list(plan.relinked)
        if kind is ATTENDEES and (plan.declared or plan.create):
            questionnaire_hydrate(event=event, attendee_ids=sorted(plan.declared | {r.pk for r in plan.create}))
        if changed:
            event_id, name, ids = event.pk, kind.name, sorted(set(changed))
            transaction.on_commit(lambda: facts_changed.send(sender=model, event_id=event_id, kind=name, ids=ids))
    return results


def _referenced(items: Iterable[dict], names: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for item in items:
        for name in names:
            value = item.get(name)
            if isinstance(value, list):
                out.update(value)
            elif isinstance(value, str):
                out.add(value)
    return out


def _lookup(model: type[models.Model], event: Event, key: str, wanted: set[str]) -> dict[str, int]:
    if not wanted:
        return {}
    return dict(model._default_manager.filter(event=event, **{f"{key}__in": wanted}).values_list(key, "pk"))


def _links(model: type[models.Model], name: str, pks: list[int]) -> dict[int, set[int]]:
    """The current links of relation `name` for rows `pks`: row pk -> set of target pks."""
    out: dict[int, set[int]] = {pk: set() for pk in pks}
    if not pks:
        return out
    through, source, target = _through(model, name)
    for row, other in through.objects.filter(**{f"{source}__in": pks}).values_list(source, target):
        out[row].add(other)
    return out


def _through(model: type[models.Model], name: str) -> tuple[Any, str, str]:
    """The through model of many-to-many `name` and its two id columns (source, target)."""
    m2m = model._meta.get_field(name)
    through = m2m.remote_field.through  # type: ignore[union-attr]
    return through, m2m.m2m_column_name(), m2m.m2m_reverse_name()  # type: ignore[union-attr]


def _resolve(values: list[str], known: dict[str, int], name: str, template: str) -> set[int]:
    missing = sorted(set(values) - known.keys())
    if missing:
        shown = ", ".join(repr(m) for m in missing[:QUOTED_MISSING]) + (" ..." if len(missing) > QUOTED_MISSING else "")
        raise ValueError(template.format(field=name, missing=shown))
    return {known[v] for v in values}


def _plan_item(
    event: Event,
    kind: Kind,
    item: dict,
    row: models.Model | None,
    topics: dict[str, int],
    rooms: dict[str, int],
    links: dict[str, dict[int, set[int]]],
    plan: _Plan,
) -> str:
    """Add one item to the plan and say its status; ValueError with the reason refuses it."""
    wanted_links: dict[str, set[int]] = {}
    for name in kind.topics:
        if name in item:
            wanted_links[name] = _resolve(item[name], topics, name, UNKNOWN_TOPICS)
    for name in kind.rooms:
        if name in item:
            wanted_links[name] = _resolve(item[name], rooms, name, UNKNOWN_ROOMS)
    values = {name: item[name] for name in kind.fields if name in item}
    for name in kind.room_fk:
        if name in item:
            ref = item[name]
            values[f"{name}_id"] = None if ref is None else _resolve([ref], rooms, name, UNKNOWN_ROOMS).pop()
    if row is None:
        for name in kind.required:
            if name not in values:
                raise ValueError(REQUIRED_ON_CREATE.format(field=name, kind=kind.name))
        _check(values, None)
        new = kind.model(event=event, **{kind.key: item[kind.key]}, **values)
        plan.create.append(new)
        for name, targets in wanted_links.items():
            plan.create_links.append((new, name, targets))
        return CREATED
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    _check(values, row)
    for name in changed:
        setattr(row, name, values[name])
    linked = False
    for name, targets in wanted_links.items():
        current = links[name][row.pk]
        if targets != current:
            linked = True
            plan.add.setdefault(name, []).extend((row.pk, t) for t in sorted(targets - current))
            plan.remove.setdefault(name, []).extend((row.pk, t) for t in sorted(current - targets))
            if kind is ATTENDEES and name in DECLARED:
                plan.declared.add(row.pk)
    if changed:
        plan.update.append(row)
        plan.update_fields.update(changed, kind.touch)
        for name in kind.touch:
            setattr(row, name, timezone.now())
    elif linked:
        plan.relinked.add(row.pk)
    return UPDATED if changed or linked else UNCHANGED


def _check(values: dict, row: models.Model | None) -> None:
    """The item's values as they would be saved over `row` (None: a new row) hold together."""
    starts = values.get("starts_at", getattr(row, "starts_at", None))
    ends = values.get("ends_at", getattr(row, "ends_at", None))
    if starts is not None and ends is not None and ends < starts:
        raise ValueError(ENDS_BEFORE_START.format(ends=ends.isoformat(), starts=starts.isoformat()))


def _write(kind: Kind, plan: _Plan) -> None:
    model = kind.model
    if plan.create:
        model._default_manager.bulk_create(plan.create)
        for row, name, targets in plan.create_links:
            plan.add.setdefault(name, []).extend((row.pk, t) for t in sorted(targets))
    if plan.update:
        # One UPDATE for the batch: every updated row writes the union of the changed fields (a
        # field one row did not change is written with the value it has).
        model._default_manager.bulk_update(plan.update, sorted(plan.update_fields))
    for name in kind.relations:
        through, source, target = _through(model, name)
        gone = plan.remove.get(name, [])
        if gone:
            cond = models.Q()
            for row_pk, other in gone:
                cond |= models.Q(**{source: row_pk, target: other})
            through.objects.filter(cond).delete()
        new = plan.add.get(name, [])
        if new:
            through.objects.bulk_create([through(**{source: a, target: b}) for a, b in new], ignore_conflicts=True)
