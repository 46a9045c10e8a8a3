"""manage.py simulate_event --size S|M|L --slug X [--seed N]

A synthetic event in the database, from the benchmarks' generator (recommendations/evaluation/synthetic.py: planted
communities of interest, power-law activity and context popularity): S = 2k attendees, 200 rooms,
20k interactions; M = 50k, 5k, 1M; L = 500k, 20k, 10M. Each community is also an interest tag
its members declared, and one attendee in five offers and one in five seeks a random tag, so the
rules engine has declared data to work with. Rows are written with COPY on PostgreSQL (an M event
in seconds) and bulk_create elsewhere; interactions are marked processed (nothing to fan out).
"""

import io
import time
from datetime import UTC, datetime

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from events.models import Attendee, Event, Interaction, InterestTag, Organization, Room
from recommendations.evaluation.synthetic import SIZES, make_event

EVENT_EXISTS = "An event with slug {slug!r} already exists."
COPY_CHUNK = 200_000


class Command(BaseCommand):
    help = "Create a synthetic event (rooms, attendees, interests, interactions) of size S, M or L."

    def add_arguments(self, parser):
        parser.add_argument("--size", required=True, choices=sorted(SIZES))
        parser.add_argument("--slug", required=True)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, size, slug, seed, **options):
        if Event.objects.filter(slug=slug).exists():
            raise CommandError(EVENT_EXISTS.format(slug=slug))
        started = time.perf_counter()
        ev = make_event(size, seed=seed)
        generated = time.perf_counter() - started
        with transaction.atomic():
            event = simulate(slug=slug, size=size, ev=ev, seed=seed)
        if connection.vendor == "postgresql":
            # Fresh statistics: without them the planner takes a million new rows for a thousand,
            # and the real-time path's "rows after training" query scans the whole event.
            with connection.cursor() as cursor:
                for model in (Interaction, Attendee, Room):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.stdout.write(
            f"created {slug} (id {event.pk}): {ev.n_attendees} attendees, {ev.n_contexts} rooms, "
            f"{ev.attendee.shape[0]} interactions; generated {generated:.1f}s, "
            f"written {time.perf_counter() - started - generated:.1f}s "
            f"({'COPY' if connection.vendor == 'postgresql' else 'bulk_create'})"
        )


def simulate(*, slug: str, size: str, ev, seed: int) -> Event:
    org, _ = Organization.objects.get_or_create(slug="synthetic", defaults={"name": "Synthetic events"})
    event = Event.objects.create(organization=org, slug=slug, name=f"Synthetic event {size} (seed {seed})")
    Room.objects.bulk_create(
        [Room(event=event, external_id=f"room-{i}", name=f"Session {i}") for i in range(ev.n_contexts)],
        batch_size=5000,
    )
    n_comm = int(ev.community.max()) + 1
    InterestTag.objects.bulk_create(
        [InterestTag(event=event, slug=f"topic-{k}", label=f"Topic {k}") for k in range(n_comm)], batch_size=5000
    )
    _insert_attendees(event, ev.n_attendees)
    room_pk = _pks(Room, event, "room-", ev.n_contexts)
    att_pk = _pks(Attendee, event, "att-", ev.n_attendees)
    tag_pk = np.array(
        [pk for _, pk in sorted(InterestTag.objects.filter(event=event).values_list("slug", "pk"), key=_suffix)]
    )
    rng = np.random.default_rng(seed + 1)
    interests = np.column_stack([att_pk, tag_pk[ev.community]])
    chosen = rng.random((2, ev.n_attendees)) < 0.2
    offers = np.column_stack([att_pk[chosen[0]], tag_pk[rng.integers(0, n_comm, int(chosen[0].sum()))]])
    seeks = np.column_stack([att_pk[chosen[1]], tag_pk[rng.integers(0, n_comm, int(chosen[1].sum()))]])
    for field, pairs in (("interests", interests), ("offers", offers), ("seeks", seeks)):
        through = getattr(Attendee, field).through
        _write(through, ["attendee_id", "interesttag_id"], [pairs[:, 0], pairs[:, 1]])
    threshold = event.dwell_threshold("join_room")
    now = timezone.now()
    n = ev.attendee.shape[0]
    occurred = [datetime.fromtimestamp(t, tz=UTC) for t in ev.start.tolist()]
    _write(
        Interaction,
        [
            "event_id",
            "attendee_id",
            "room_id",
            "type",
            "value",
            "occurred_at",
            "client_event_id",
            "source",
            "qualifies",
            "created_at",
            "processed_at",
        ],
        [
            np.full(n, event.pk),
            att_pk[ev.attendee],
            room_pk[ev.context],
            ["join_room"] * n,
            ev.weight,
            occurred,
            [f"sim-{i}" for i in range(n)],
            ["import"] * n,
            ev.weight >= threshold,
            [now] * n,
            [now] * n,
        ],
    )
    return event


def _suffix(item) -> int:
    return int(item[0].rsplit("-", 1)[1])


def _pks(model, event, prefix: str, count: int) -> np.ndarray:
    out = np.zeros(count, dtype=np.int64)
    for ext, pk in model.objects.filter(event=event).values_list("external_id", "pk").iterator(chunk_size=20_000):
        out[int(ext[len(prefix) :])] = pk
    return out


def _insert_attendees(event: Event, count: int) -> None:
    now = timezone.now()
    columns = [
        "event_id",
        "external_id",
        "display_name",
        "headline",
        "company",
        "role",
        "group",
        "consent_be_recommended",
        "consent_receive_recommendations",
        "consent_training",
        "created_at",
        "updated_at",
    ]
    _write(
        Attendee,
        columns,
        [
            [event.pk] * count,
            [f"att-{i}" for i in range(count)],
            [f"Attendee {i}" for i in range(count)],
            [""] * count,
            [""] * count,
            [""] * count,
            [""] * count,
            [True] * count,
            [True] * count,
            [True] * count,
            [now] * count,
            [now] * count,
        ],
    )


def _write(model, columns: list[str], values: list) -> None:
    """Insert column-wise values: COPY on PostgreSQL, bulk_create elsewhere. A NOT NULL column left
    out gets its field's default, as the ORM would give it (COPY knows no Django defaults)."""
    values = [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
    count = len(values[0]) if values else 0
    for field in model._meta.concrete_fields:
        if field.column in columns or field.null or field.primary_key:
            continue
        default = field.get_default()  # "" for a blank text field without one, None when there is none
        if default is not None:
            columns = [*columns, field.column]
            values.append([default] * count)
    rows = zip(*values, strict=True)
    if connection.vendor != "postgresql":
        by_column = {f.column: f.attname for f in model._meta.concrete_fields}
        fields = [by_column[c] for c in columns]
        model.objects.bulk_create((model(**dict(zip(fields, r, strict=True))) for r in rows), batch_size=5000)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        buf = io.StringIO()
        for i, row in enumerate(rows, 1):
            buf.write("\t".join(_text(x) for x in row))
            buf.write("\n")
            if i % COPY_CHUNK == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def _text(x) -> str:
    if x is None:
        return "\\N"
    if isinstance(x, bool):
        return "t" if x else "f"
    if isinstance(x, datetime):
        return x.isoformat()
    return str(x)
