"""The local model's inputs, built from the database: which facts become rows, contexts and weights.

- rows: the event's *qualifying* interactions of attendees who consent to training; everything
  else is left out, so an attendee who withdraws consent disappears at the next training;
- contexts: rooms, content items and interest tags (a questionnaire answer is an interaction with
  a tag: everyone who chose it "joined" it);
- weight: dwell seconds x `event.interaction_weight(type)` for room joins and content views;
  types without a dwell (chat, question, questionnaire...) count as one minute of presence x their
  weight (NO_DWELL_SECONDS), so that a question (weight 2) weighs like two minutes in the room;
- time: a visit covers [occurred_at, occurred_at + dwell]; a point in time for the others. Two
  points overlap only when equal, so questionnaire answers earn the same-time bonus only if
  given at the same second (no claim of co-presence for a shared answer).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
from django.db import connection

from events.enums import InteractionType
from events.models import Attendee, Event, Interaction
from events.questionnaire import questionnaire_weight
from recommendations.engine import EngineConfig, InteractionArrays

logger = logging.getLogger(__name__)


ROOM, CONTENT, INTEREST = 0, 1, 2


_KIND_SHIFT = np.int64(1) << np.int64(48)  # context key = kind << 48 | pk: unique, sortable


DWELL_TYPES = frozenset({InteractionType.JOIN_ROOM.value, InteractionType.VIEW_CONTENT.value})


NO_DWELL_SECONDS = 60.0


# Bumped when `recommendations.engine.ranker` decides differently (it is part of the fingerprint).
RANKER_PROCEDURE = 1


# How rows are weighed is an input too. 2: questionnaire rows fade with their attendee's behaviour.
WEIGHING = 2


@dataclass
class EventData:
    """The engine's inputs for one event, with the mappings back to database rows."""

    inputs: InteractionArrays
    attendee_ids: np.ndarray  # index -> Attendee pk (every attendee of the event, by pk)
    context_keys: np.ndarray  # index -> kind << 48 | pk
    interaction_ids: np.ndarray  # per input row
    max_interaction_id: int

    @property
    def n_rows(self) -> int:
        return int(self.inputs.attendee.shape[0])

    def fingerprint(self, config: EngineConfig, *, learn: bool = True) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
        # How the ranking is decided is an input too: the same rows under another procedure (or
        # with the choice switched off) are another version.
        h.update(f"ranker:{RANKER_PROCEDURE if learn else 'fixed'}".encode())
        h.update(f"weighing:{WEIGHING}".encode())
        for arr in (
            self.attendee_ids,
            self.context_keys,
            self.inputs.attendee,
            self.inputs.context,
            self.inputs.weight,
            self.inputs.starts(),
            self.inputs.ends(),
        ):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


_TYPES = tuple(InteractionType.values)


def _interaction_rows(queryset) -> dict[str, np.ndarray]:
    """The rows of `queryset` as aligned numpy arrays. On PostgreSQL, one COPY of numbers only
    (about 10x faster than building a model tuple per row: 1M rows in a few seconds)."""
    if connection.vendor == "postgresql":
        return _interaction_rows_copy(queryset)
    rows = list(
        queryset.order_by("pk").values_list(
            "pk", "attendee_id", "room_id", "content_id", "interest_id", "type", "value", "occurred_at"
        )
    )
    n = len(rows)
    pk = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    attendee = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
    kind = np.fromiter((ROOM if r[2] else CONTENT if r[3] else INTEREST for r in rows), dtype=np.int64, count=n)
    ctx_pk = np.fromiter((r[2] or r[3] or r[4] for r in rows), dtype=np.int64, count=n)
    return {
        "pk": pk,
        "attendee": attendee,
        "context_key": (kind << np.int64(48)) | ctx_pk,
        "type": np.array([r[5] for r in rows], dtype=object),
        "value": np.array([np.nan if r[6] is None else r[6] for r in rows], dtype=np.float64),
        "occurred": np.fromiter((r[7].timestamp() for r in rows), dtype=np.float64, count=n),
    }


def _interaction_rows_copy(queryset) -> dict[str, np.ndarray]:
    type_case = " ".join(f"WHEN %s THEN {i}" for i in range(len(_TYPES)))
    inner, params = (
        queryset.order_by()
        .values("pk", "attendee_id", "room_id", "content_id", "interest_id", "type", "value", "occurred_at")
        .query.sql_with_params()
    )
    # Numbers only, aggregated server-side into one text value: one round trip, parsed by numpy in
    # C (a row-by-row fetch of 1M rows costs seconds of Python per step).
    row = (
        "concat_ws(' ', q.pk, q.attendee_id, "
        f"CASE WHEN q.room_id IS NOT NULL THEN {ROOM} WHEN q.content_id IS NOT NULL THEN {CONTENT} "
        f"ELSE {INTEREST} END, COALESCE(q.room_id, q.content_id, q.interest_id), "
        f"CASE q.type {type_case} ELSE -1 END, COALESCE(q.value, -1), "
        "EXTRACT(EPOCH FROM q.occurred_at)::float8)"
    )
    sql = f"SELECT string_agg({row}, ' ') FROM ({inner}) q"  # unordered: sorted by pk below
    with connection.cursor() as cursor:
        cursor.execute(sql, [*_TYPES, *params])
        text = cursor.fetchone()[0] or ""
    flat = np.fromstring(text, dtype=np.float64, sep=" ") if text else np.zeros(0)
    cols = flat.reshape(-1, 7)
    cols = cols[np.argsort(cols[:, 0], kind="stable")]
    kind, ctx_pk = cols[:, 2].astype(np.int64), cols[:, 3].astype(np.int64)
    value = cols[:, 5].copy()
    value[value < 0] = np.nan  # a value cannot be negative (check constraint): -1 stands for NULL
    return {
        "pk": cols[:, 0].astype(np.int64),
        "attendee": cols[:, 1].astype(np.int64),
        "context_key": (kind << np.int64(48)) | ctx_pk,
        "type": np.array((*_TYPES, ""), dtype=object)[cols[:, 4].astype(np.int64)],
        "value": value,
        "occurred": cols[:, 6],
    }


def _weights_and_times(event: Event, rows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    types = rows["type"]
    n = types.shape[0]
    weight = np.empty(n, dtype=np.float64)
    dwell = np.zeros(n, dtype=np.float64)
    for t in set(types.tolist()):
        sel = types == t
        w = event.interaction_weight(t)
        if t in DWELL_TYPES:
            v = np.nan_to_num(rows["value"][sel], nan=0.0)
            dwell[sel] = v
            weight[sel] = v * w
        else:
            weight[sel] = NO_DWELL_SECONDS * w
    start = rows["occurred"]
    return weight, start, start + dwell


QUESTIONNAIRE = InteractionType.QUESTIONNAIRE.value


def _fade_questionnaire(weight: np.ndarray, rows: dict[str, np.ndarray], live_counts: dict[int, int]) -> None:
    """Scale each questionnaire row's weight (in place) by how much real behaviour its attendee
    has shown: `questionnaire_weight(n)` relative to its base, with `n` the attendee's qualifying
    non-questionnaire interactions. A declared interest is the best guess before the event and a
    weak one once people's behaviour can be seen."""
    answered = rows["type"] == QUESTIONNAIRE
    if not answered.any():
        return
    n = np.array([live_counts.get(int(a), 0) for a in rows["attendee"][answered]], dtype=np.float64)
    weight[answered] *= questionnaire_weight(n, base=1.0)


def _live_counts(rows: dict[str, np.ndarray]) -> dict[int, int]:
    """Per attendee, the rows that are not questionnaire answers (the loaded rows all qualify)."""
    ids, counts = np.unique(rows["attendee"][rows["type"] != QUESTIONNAIRE], return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist(), strict=True))


def _training_rows(event: Event):
    return Interaction.objects.filter(event=event, qualifies=True, attendee__consent_training=True)


def load_event_data(*, event: Event, upto_id: int | None = None) -> EventData:
    """The event's training inputs, up to interaction `upto_id` (default: everything committed)."""
    qs = _training_rows(event)
    if upto_id is not None:
        qs = qs.filter(pk__lte=upto_id)
    rows = _interaction_rows(qs)
    weight, start, end = _weights_and_times(event, rows)
    _fade_questionnaire(weight, rows, _live_counts(rows))
    keep = weight > 0  # a zero weight (a leave, a zero dwell) carries no evidence
    attendee_ids = np.array(sorted(Attendee.objects.filter(event=event).values_list("pk", flat=True)), dtype=np.int64)
    context_keys, context = np.unique(rows["context_key"][keep], return_inverse=True)
    att = np.searchsorted(attendee_ids, rows["attendee"][keep])
    inputs = InteractionArrays(
        att.astype(np.int64),
        context.astype(np.int64).reshape(-1),
        weight[keep],
        int(attendee_ids.shape[0]),
        int(context_keys.shape[0]),
        start[keep],
        end[keep],
    )
    max_id = int(rows["pk"].max()) if rows["pk"].size else (upto_id or 0)
    return EventData(inputs, attendee_ids, context_keys.astype(np.int64), rows["pk"][keep], max_id)
