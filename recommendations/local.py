"""The local model, seen from Django: the engine's inputs built from the database, training into a
stored artifact, serving with readable reasons, and real-time updates.

The arithmetic lives in `recommendations.engine` (no Django); this module owns the id <-> index
mappings, the choice of which facts become inputs, and the bookkeeping around versions.

Inputs (see `load_event_data`):
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

import gc
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Q

from events.enums import EnginePreset, InteractionType
from events.models import Attendee, Content, Event, Interaction, InterestTag, Room
from events.questionnaire import live_qualifying_counts, questionnaire_weight

from .backends import Candidate, Reason, RecommendationBackend, Unavailable
from .engine import FACE_TO_FACE, EngineConfig, Explanation, InteractionArrays, Model, fit
from .engine.ranker import POPULARITY_PARTNERS, REPEAT_POPULARITY, SPLIT_AT, Choice, K, choose_ranker, met_in_model
from .models import ModelVersion
from .rules import rules_candidates

logger = logging.getLogger(__name__)

ROOM, CONTENT, INTEREST = 0, 1, 2
_KIND_SHIFT = np.int64(1) << np.int64(48)  # context key = kind << 48 | pk: unique, sortable
DWELL_TYPES = frozenset({InteractionType.JOIN_ROOM.value, InteractionType.VIEW_CONTENT.value})
NO_DWELL_SECONDS = 60.0
BACKEND_NAME = "local"

NO_PUBLISHED_VERSION = "No published local model for event {event!r} yet; run `manage.py train --event {event}`."
# Bumped when `recommendations.engine.ranker` decides differently (it is part of the fingerprint).
RANKER_PROCEDURE = 1
# How rows are weighed is an input too. 2: questionnaire rows fade with their attendee's behaviour.
WEIGHING = 2
ARTIFACT_MISSING = "The artifact of model version {version} is missing at {path}."
# Long lists keep room for people the attendee has not met: at least this share of a list ranked
# from the artifact (`LoadedModel.ranked`). WHY: at a dense event everyone the model ranks first
# is someone already met, and a list of 100 held fewer than 10 new people for 43 of WS16's 95
# attendees although 20 were there to meet; one in ten is one page of the widget in a list of
# 100, and only the tail of a list gives way (chosen from the list's shape, not from any data).
NEW_PEOPLE_SHARE = 0.1


# --- Inputs ---------------------------------------------------------------------------------------


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


# --- Training -------------------------------------------------------------------------------------


@dataclass
class LocalFit:
    """One training of the local model, without version bookkeeping (the caller decides)."""

    fingerprint: str
    metrics: dict
    artifact: str
    artifact_bytes: int
    stats: dict
    seconds: float
    config: dict = field(default_factory=dict)


BAD_CONFIG = "Unknown engine setting(s): {names}; known: {known}."
# Named settings, for contexts of another kind than rooms: `Event.engine_preset` and
# `train --config NAME` (keys = the values of events.enums.EnginePreset but the default "").
CONFIG_PRESETS = {EnginePreset.FACE_TO_FACE.value: FACE_TO_FACE}
BAD_CONFIG_TEXT = "expected a JSON object or a preset name ({presets}), got {value!r}."


def parse_config(text: str) -> dict | None:
    """The overrides a `--config` option names: a preset's settings, a JSON object, or None when
    empty. Raises ValueError with one line saying what is wrong."""
    if not text:
        return None
    if text in CONFIG_PRESETS:
        return CONFIG_PRESETS[text].to_dict()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(BAD_CONFIG_TEXT.format(presets=", ".join(CONFIG_PRESETS), value=text))
    return value


def engine_config(overrides: dict | None = None) -> EngineConfig:
    """The engine's defaults (generic values for rooms and talks, see EngineConfig), then
    settings.LOCAL_MODEL_CONFIG, then `overrides` (e.g. `train --config '{"w_repeat": 0.2}'`)."""
    values = EngineConfig().to_dict() | dict(getattr(settings, "LOCAL_MODEL_CONFIG", {}) or {}) | dict(overrides or {})
    unknown = sorted(set(values) - set(EngineConfig().to_dict()))
    if unknown:
        raise ValueError(BAD_CONFIG.format(names=", ".join(unknown), known=", ".join(sorted(EngineConfig().to_dict()))))
    return EngineConfig.from_dict(values)


def default_config(*, event: Event, overrides: dict | None = None) -> EngineConfig:
    """The configuration an event trains with: the defaults, settings.LOCAL_MODEL_CONFIG, the
    event's preset (``Event.engine_preset``), then ``overrides`` (``train --config``)."""
    preset = CONFIG_PRESETS.get(event.engine_preset)
    return engine_config((preset.to_dict() if preset is not None else {}) | dict(overrides or {}))


def artifact_dir(*, event: Event, fingerprint: str) -> Path:
    return Path(settings.MODEL_ARTIFACT_ROOT) / f"event-{event.pk}" / fingerprint[:20]


def fit_local_model(*, event: Event, config: EngineConfig | None = None, learn: bool = True) -> LocalFit:
    """Read the inputs, decide how this event ranks (`recommendations.engine.ranker`: learned on
    its own earlier interactions, validated on its later ones, against the obvious lists), fit
    the chosen configuration on everything, store the artifact. Same inputs and config give the
    same fingerprint and the same artifact directory (written once). ``learn=False`` fits
    ``config`` as it is (still scored beside the baselines)."""
    started = time.perf_counter()
    base = config or default_config(event=event)
    data = load_event_data(event=event)
    fingerprint = data.fingerprint(base, learn=learn)
    choice = choose_ranker(data.inputs, base, learn=learn)
    cfg = choice.config
    model = fit(data.inputs, cfg)
    folder = artifact_dir(event=event, fingerprint=fingerprint)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.npz")
    np.savez_compressed(
        folder / "index.npz",
        attendee_ids=data.attendee_ids,
        context_keys=data.context_keys,
        max_interaction_id=np.array(data.max_interaction_id),
    )
    size = sum(p.stat().st_size for p in folder.iterdir())
    stats = {
        "attendees": int(np.unique(data.inputs.attendee).shape[0]),
        "attendees_total": int(data.attendee_ids.shape[0]),
        "contexts": int(data.context_keys.shape[0]),
        "interactions": data.n_rows,
        "max_interaction_id": data.max_interaction_id,
        "context_cap": int(model.cap),
    }
    return LocalFit(
        fingerprint=fingerprint,
        metrics=ranker_metrics(choice),
        artifact=str(folder),
        artifact_bytes=size,
        stats=stats,
        seconds=time.perf_counter() - started,
        config=cfg.to_dict(),
    )


def local_reference_metrics(*, event: Event) -> dict:
    """What the local model would score on the event's current data: the ranking it would choose
    and its figures on the event's own time split (as `ranker_metrics`), with nothing fitted on
    the whole or stored. The bar another backend's version (Amazon Personalize) must clear."""
    data = load_event_data(event=event)
    return ranker_metrics(choose_ranker(data.inputs, default_config(event=event), learn=True))


def ranker_metrics(choice: Choice) -> dict:
    """A version's offline metrics: the chosen ranking's figures on the event's own time split
    (history -> future, see `recommendations.engine.ranker`), the obvious lists' figures beside
    them, and the choice itself (`metrics["ranker"]`: name, kind, reason, feature shares, the whole
    table). No figures when the event was too small to hold anything out."""
    out: dict = {"split": f"time, first {SPLIT_AT:.0%} of rows", "k": K, "ranker": choice.to_dict()}
    chosen = choice.validation.get(choice.name)
    if chosen is None:
        out["evaluated"] = 0
        return out
    out["evaluated"] = chosen.n_all
    out["evaluated_new"] = chosen.n_new
    out["recall_at_10"] = round(chosen.all_r, 4)
    out["precision_at_10"] = round(chosen.all_p, 4)
    out["new_recall_at_10"] = round(chosen.new_r, 4)
    out["new_precision_at_10"] = round(chosen.new_p, 4)
    for name in (POPULARITY_PARTNERS, REPEAT_POPULARITY):
        s = choice.validation.get(name)
        if s is not None:
            prefix = "popularity_" if name == POPULARITY_PARTNERS else "repeat_popularity_"
            out[f"{prefix}precision_at_10"] = round(s.all_p, 4)
            out[f"{prefix}new_recall_at_10"] = round(s.new_r, 4)
    return out


def train_event_now(
    *, event: Event, trigger: str = "cli", config: EngineConfig | None = None, learn: bool = True
) -> ModelVersion:
    """Train synchronously through the one training path (`recommendations.training.run_training`:
    a TrainingRun row, idempotence by fingerprint, the publish gate) and return the version the
    run made or found. Raises ValueError with the run's message when no version came out of it
    (the fit failed, or another run of the event is in progress)."""
    from .training import run_training  # training imports serving, which loads this module

    run = run_training(event=event, trigger=trigger, config=config, learn=learn)
    if run.model_version is None:
        raise ValueError(run.message)
    return run.model_version


# --- Loaded versions (per process) -----------------------------------------------------------------


class LoadedModel:
    """A published version in memory: the engine model and its index. The real-time path mutates
    `model` in place under `lock`; `applied` holds the interaction ids it already added."""

    def __init__(self, version: ModelVersion) -> None:
        folder = Path(version.artifact)
        if not (folder / "model.npz").exists():
            raise Unavailable(ARTIFACT_MISSING.format(version=version.number, path=folder))
        self.version_id = version.pk
        self.model = Model.load(folder / "model.npz")
        with np.load(folder / "index.npz") as z:
            self.attendee_ids = z["attendee_ids"].astype(np.int64)
            self.context_keys = z["context_keys"].astype(np.int64)
            self.trained_upto = int(z["max_interaction_id"])
        self._attendee_index = {int(pk): i for i, pk in enumerate(self.attendee_ids.tolist())}
        self._context_index = {int(k): i for i, k in enumerate(self.context_keys.tolist())}
        self.applied: set[int] = set()
        self.applied_upto = self.trained_upto
        # The reasons the real-time path gave for pairs that changed since training, per row
        # (attendee index -> {candidate pk as str: ((kind, text, weight), ...)}): what each row's
        # reasons key holds (`realtime_why_key`). Kept here rather than read back from the cache,
        # because this process's model is the one those lists come from; a process that starts
        # afresh rebuilds it when it catches up on everything since training. WHY tuples of str
        # and float: the garbage collector stops tracking containers of atomic values, so this
        # map, which grows with the event, is not walked by every full collection (with lists it
        # was, see `loaded_model`).
        self.why: dict[int, dict[str, tuple]] = {}
        self.names: dict[int, tuple[str, float]] = {}  # context key -> (name, when fetched): `_context_names`
        self.lock = threading.Lock()

    def index_of(self, attendee_id: int) -> int | None:
        return self._attendee_index.get(attendee_id)

    def attendee_index(self, attendee_id: int) -> int:
        """Index of an attendee, appending one the model has not seen (joined after training)."""
        i = self._attendee_index.get(attendee_id)
        if i is None:
            i = len(self._attendee_index)
            self._attendee_index[attendee_id] = i
            self.attendee_ids = np.append(self.attendee_ids, np.int64(attendee_id))
        return i

    def context_index(self, key: int) -> int:
        i = self._context_index.get(key)
        if i is None:
            i = len(self._context_index)
            self._context_index[key] = i
            self.context_keys = np.append(self.context_keys, np.int64(key))
        return i

    def n_contexts_of(self, a: int) -> int:
        return int(self.model.A.length[a]) if a < self.model.n_attendees else 0

    def met_of(self, a: int) -> np.ndarray:
        """Indices of the people `a` probably talked to, in what the model holds now (the ranker's
        own "met": `ranker.met_in_model`). Call under `lock`."""
        return met_in_model(self.model, a)

    def ranked(self, a: int, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The model's top `k` for row `a` (indices, scores; `exclude` left out), of which at least
        NEW_PEOPLE_SHARE are people `a` has not met when there are that many: when the top `k`
        holds fewer, its lowest-ranked people already met give way to the best-ranked new ones,
        appended (their scores are below every kept entry, so the list stays in score order)."""
        model = self.model
        with self.lock:
            if (exclude is None or not len(exclude)) and k <= model.config.top_k:
                idx, scores = model.neighbours(a, k)
            else:
                idx, scores = model.neighbours(a, k, exclude=exclude)
            floor = int(k * NEW_PEOPLE_SHARE)
            met = self.met_of(a)  # under the lock: the real-time path adds to the model's rooms
            is_new = ~np.isin(idx, met)
            short = floor - int(is_new.sum())
            if short <= 0 or not len(met):
                return idx, scores
            parts = [met, idx, np.array([a], dtype=np.int64)]
            if exclude is not None:
                parts.append(np.asarray(exclude, dtype=np.int64))
            new_idx, new_scores = model.neighbours(a, short, exclude=np.concatenate(parts))
        if not len(new_idx):
            return idx, scores
        room = max(0, len(new_idx) - (k - len(idx)))  # entries to drop: a short list just grows
        keep = np.ones(len(idx), dtype=bool)
        if room:
            keep[np.flatnonzero(~is_new)[-room:]] = False
        return np.concatenate([idx[keep], new_idx]), np.concatenate([scores[keep], new_scores])


_LOADED: dict[int, LoadedModel] = {}
_LOADED_LOCK = threading.Lock()
MAX_LOADED = 4  # versions kept per process (a few events served at once)


@overload
def published_version(*, event: Event) -> ModelVersion | None: ...


@overload
def published_version(*, event_id: int) -> ModelVersion | None: ...


def published_version(*, event: Event | None = None, event_id: int | None = None) -> ModelVersion | None:
    """The event's published local version. Given `event_id`, the event comes in the same query
    (`version.event`): the real-time path asks for every interaction."""
    published = ModelVersion.objects.filter(backend=BACKEND_NAME, status=ModelVersion.Status.PUBLISHED)
    if event is not None:
        return published.filter(event=event).first()
    assert event_id is not None  # one of the two, as the overloads say
    return published.select_related("event").filter(event_id=event_id).first()


def loaded_model(version: ModelVersion) -> LoadedModel:
    with _LOADED_LOCK:
        loaded = _LOADED.get(version.pk)
        if loaded is None:
            loaded = LoadedModel(version)
            while len(_LOADED) >= MAX_LOADED:
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[version.pk] = loaded
            # WHY: a real-time update allocates a few objects per touched row, so full collections
            # come every few updates, and each walked everything the process holds (Django, the
            # loaded indexes): 20-200 ms pauses on a worker at size M. What exists now is
            # long-lived; frozen, it is left out of every later collection. With `why` as tuples:
            # p99 of benchmarks/realtime_django.py at size M 43 ms, from 150.
            gc.freeze()
        return loaded


def forget_loaded_models() -> None:
    """Drop this process's loaded versions (tests; after a purge)."""
    with _LOADED_LOCK:
        _LOADED.clear()


# --- Real time ------------------------------------------------------------------------------------

REALTIME_TTL = 24 * 3600  # longer than any retrain interval: a new version makes the keys moot


def realtime_key(version_id: int, attendee_id: int) -> str:
    """The live list of an attendee: packed int64 [contexts, ids x top_k, scores x top_k] (see
    `live_list`), rewritten whenever the worker recomputes the row."""
    return f"recs:local:v{version_id}:a{attendee_id}"


def realtime_why_key(version_id: int, attendee_id: int) -> str:
    """The worker's reasons for that attendee's pairs that changed since training ({candidate pk
    as str: ((kind, text, weight), ...)}), rewritten only when one of them changes."""
    return f"recs:local:v{version_id}:why{attendee_id}"


def live_list(version_id: int, attendee_id: int) -> dict | list | None:
    """The live list as {"items": [[pk, score], ...], "why": {...}, "contexts": n}, or None (or as
    it was written by a process of an earlier release: that dict, or a list of pairs only).

    WHY two keys and a packed table: an update into a large room recomputes hundreds of rows
    but changes the reasons of only the pairs with the attendee who moved (one row's, as a rule);
    rewriting every row's reasons and building its list as Python objects was most of the
    worker's step (benchmarks/realtime_django.py). The reasons of pairs no longer listed are
    dropped when the row's reasons are next rewritten."""
    table_key, why_key = realtime_key(version_id, attendee_id), realtime_why_key(version_id, attendee_id)
    got = cache.get_many([table_key, why_key])
    table = got.get(table_key)
    if table is None:
        return None
    if isinstance(table, (dict, list)):  # written by a process of an earlier release
        return table
    packed = np.frombuffer(table, dtype=np.int64)
    k = (packed.size - 1) // 2
    ids, scores = packed[1 : 1 + k], packed[1 + k :].view(np.float64)
    listed = ids >= 0
    items = [[b, s] for b, s in zip(ids[listed].tolist(), scores[listed].tolist(), strict=True)]
    return {"items": items, "why": got.get(why_key) or {}, "contexts": int(packed[0])}


def realtime_apply(*, event_id: int, interaction_ids: list[int]) -> int:
    """`realtime_recompute`, counted: the number of attendees whose neighbour lists were recomputed."""
    return len(realtime_recompute(event_id=event_id, interaction_ids=interaction_ids))


def realtime_recompute(*, event_id: int, interaction_ids: list[int]) -> list[int]:
    """Add new qualifying interactions to the live model of the event's published version and
    store the recomputed neighbour lists in the shared cache, where every serving process reads
    them before the artifact's table. Returns the ids of the attendees recomputed (whose lists the
    live push then compares).

    Besides `interaction_ids`, the process also applies every later interaction it has not seen
    (id above what it applied), so a process that missed a signal catches up on the next one and
    every process converges on "artifact + everything since". Idempotent: ids already applied are
    skipped."""
    version = published_version(event_id=event_id)
    if version is None:
        return []
    event = version.event
    loaded = loaded_model(version)
    with loaded.lock:
        # A range on the primary key first, so that PostgreSQL reads only the rows after training.
        qs = _training_rows(event).filter(
            Q(pk__gt=loaded.trained_upto), Q(pk__in=list(interaction_ids)) | Q(pk__gt=loaded.applied_upto)
        )
        rows = _interaction_rows(qs)
        fresh = np.array([pk not in loaded.applied for pk in rows["pk"].tolist()], dtype=bool)
        rows = {k: v[fresh] for k, v in rows.items()}
        if not rows["pk"].size:
            return []
        weight, start, end = _weights_and_times(event, rows)
        if (rows["type"] == QUESTIONNAIRE).any():  # answers hydrated during the event: faded as at training
            answered = rows["attendee"][rows["type"] == QUESTIONNAIRE]
            _fade_questionnaire(weight, rows, live_qualifying_counts(event=event, attendee_ids=set(answered.tolist())))
        keep = weight > 0
        att = np.array([loaded.attendee_index(int(a)) for a in rows["attendee"][keep]], dtype=np.int64)
        ctx = np.array([loaded.context_index(int(k)) for k in rows["context_key"][keep]], dtype=np.int64)
        recomputed = np.empty(0, dtype=np.int64)
        if att.size:
            new = InteractionArrays(
                att, ctx, weight[keep], len(loaded.attendee_ids), len(loaded.context_keys), start[keep], end[keep]
            )
            recomputed = loaded.model.update(new)
        loaded.applied.update(rows["pk"].tolist())
        loaded.applied_upto = max(loaded.applied_upto, int(rows["pk"].max()))
        recomputed_ids = loaded.attendee_ids[recomputed].tolist()
        model = loaded.model
        tab_i, tab_s = model.tab_i[recomputed], model.tab_s[recomputed]
        listed = tab_i >= 0
        k = tab_i.shape[1]
        packed = np.empty((recomputed.size, 1 + 2 * k), dtype=np.int64)  # see `live_list`
        packed[:, 0] = model.A.length[recomputed]
        packed[:, 1 : 1 + k] = np.where(listed, loaded.attendee_ids[np.maximum(tab_i, 0)], -1)
        packed[:, 1 + k :] = tab_s.view(np.int64)
        lists = {realtime_key(version.pk, pk): packed[i].tobytes() for i, pk in enumerate(recomputed_ids)}
        if recomputed.size >= Model.BULK_ROWS:
            # A catch-up (a worker that starts afresh mid-event) explains hundreds of thousands of
            # pairs, which takes tens of seconds at size M: the new rankings go out first, and their
            # pairs are explained from the artifact by the serving processes until the reasons follow.
            cache.set_many(lists, timeout=REALTIME_TTL)
            lists = {}
        # Reasons only where the pair changed (it involves someone who moved): the web processes
        # explain every other pair from their own copy of the published artifact, which lacks
        # what happened since training (WHY not all pairs: explaining ~25 pairs for each of a few
        # hundred rows would cost the worker more than the update itself).
        moved = np.unique(att)
        pair = listed & (np.isin(recomputed, moved)[:, None] | np.isin(tab_i, moved))
        row_of, col_of = np.nonzero(pair)
        changed = list(zip(recomputed[row_of].tolist(), tab_i[row_of, col_of].tolist(), strict=True))
        explained: dict[int, dict[str, tuple]] = {}
        for (a, b), why in render_pair_reasons(loaded, changed).items():
            pk_b = str(int(loaded.attendee_ids[b]))
            explained.setdefault(a, {})[pk_b] = tuple((r.kind, r.text, r.weight) for r in why)
        for i, a in enumerate(recomputed.tolist()):
            if a in explained:  # the row's reasons changed: rewrite them, keeping those still listed
                still = set(map(str, loaded.attendee_ids[tab_i[i][listed[i]]].tolist()))
                kept = {b: r for b, r in loaded.why.get(a, {}).items() if b in still}
                kept.update(explained[a])
                loaded.why[a] = kept
                lists[realtime_why_key(version.pk, recomputed_ids[i])] = kept
    cache.set_many(lists, timeout=REALTIME_TTL)
    return recomputed_ids


# --- Serving ---------------------------------------------------------------------------------------

# Blend with the rules engine (cold attendees): an attendee with fewer than BLEND_FULL_AT contexts in
# the model gets share = contexts / BLEND_FULL_AT of the model's evidence and the rest from the
# rules engine; each source is scaled to [0, 1] by its best candidate before mixing, so the share
# is the weight of each source's top pick. Five contexts: enough for co-presence to say more than
# the questionnaire (on sfhh09 the median attendee has dozens).
BLEND_FULL_AT = 5

SPENT_TEXT = "you both spent {minutes} min in '{name}'"
SAME_TIME_TEXT = " at the same time"
WATCHED_TEXT = "you both watched '{name}'"
CHOSE_TEXT = "you both chose {name}"
# "Met" means shared a room or session with, which is what the model sees; the words say so.
MUTUAL_TEXT = "{n} people you have both been in sessions with"
MUTUAL_ONE_TEXT = "1 person you have both been in a session with"
SOCIABLE_TEXT = "well connected: in sessions with {n} people here"
ACTIVE_TEXT = "meets many people: {minutes} min in company here"
REPEAT_TEXT = "you were together in {n} sessions"
RECENT_TEXT = "you were together recently"
MAX_CONTEXT_REASONS = 3
NAMES_SECONDS = 60


def _context_names(loaded: LoadedModel, keys: list[int]) -> dict[int, str]:
    """Names of contexts by key: from the loaded version's copy when fetched in the last
    NAMES_SECONDS, else one query per kind. WHY: every explanation names its rooms, and the query
    was a database round trip on every real-time step and every request explained from the
    artifact; a renamed room shows in new reasons within a minute, as the rules index does."""
    now = time.monotonic()
    out: dict[int, str] = {}
    by_kind: dict[int, list[int]] = {}
    for key in keys:
        known = loaded.names.get(key)
        if known is not None and now - known[1] < NAMES_SECONDS:
            out[key] = known[0]
        else:
            by_kind.setdefault(key >> 48, []).append(key & ((1 << 48) - 1))
    for kind, model, field_name in (
        (ROOM, Room, "name"),
        (CONTENT, Content, "title"),
        (INTEREST, InterestTag, "label"),
    ):
        if kind not in by_kind:
            continue
        for pk, name in model.objects.filter(pk__in=by_kind[kind]).values_list("pk", field_name):
            key = (kind << 48) | pk
            out[key] = name
            loaded.names[key] = (name, now)
    return out


def _pair_reasons(why: Explanation, keys: np.ndarray) -> tuple[list[tuple[str, int, float, str]], list[Reason]]:
    """Model reasons for one pair, before names are known: the context parts as (kind, context key,
    weight, template with {name}) and the rest as finished Reasons. `keys`: the product's key of
    each engine context. Only evidence that counts *for* the pair is a reason: a feature the
    event's learned weights count against (a negative contribution) is left out."""
    parts = []
    direct = why.features.get("direct", 0.0)
    if why.direct_raw > 0 and direct > 0:
        for (c, contrib), (w_a, w_b, overlap) in zip(
            why.contexts[:MAX_CONTEXT_REASONS], why.presence[:MAX_CONTEXT_REASONS], strict=True
        ):
            key = int(keys[c])
            kind = key >> 48
            weight = direct * contrib / why.direct_raw
            if kind == ROOM:
                text = SPENT_TEXT.replace("{minutes}", str(max(1, round(min(w_a, w_b) / 60))))
                if overlap >= 0.5:
                    parts.append(("same_time", key, weight, text + SAME_TIME_TEXT))
                else:
                    parts.append(("shared_room", key, weight, text))
            elif kind == CONTENT:
                parts.append(("shared_content", key, weight, WATCHED_TEXT))
            else:
                parts.append(("shared_interest", key, weight, CHOSE_TEXT))
    reasons = []
    features = why.features
    if why.via and features.get("two_hop", 0.0) > 0:
        n = len(why.via)
        reasons.append(
            Reason("mutual_contacts", MUTUAL_ONE_TEXT if n == 1 else MUTUAL_TEXT.format(n=n), features["two_hop"])
        )
    if why.shared_contexts > 1 and features.get("repeat", 0.0) > 0:
        reasons.append(Reason("repeat", REPEAT_TEXT.format(n=why.shared_contexts), features["repeat"]))
    if why.degree_b and features.get("social", 0.0) > 0:
        reasons.append(Reason("sociable", SOCIABLE_TEXT.format(n=why.degree_b), features["social"]))
    if why.company_seconds >= 60 and features.get("activity", 0.0) > 0:
        minutes = round(why.company_seconds / 60)
        reasons.append(Reason("active", ACTIVE_TEXT.format(minutes=minutes), features["activity"]))
    return parts, reasons


def render_pair_reasons(loaded: LoadedModel, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[Reason, ...]]:
    """Reasons for several (a index, b index) pairs: each row's pairs explained together
    (`Model.explain_row`), one query per context kind for the names."""
    by_row: dict[int, list[int]] = {}
    for a, b in pairs:
        by_row.setdefault(a, []).append(b)
    explained = {}
    for a, bs in by_row.items():
        for b, why in zip(bs, loaded.model.explain_row(a, bs), strict=True):
            explained[(a, b)] = _pair_reasons(why, loaded.context_keys)
    names = _context_names(loaded, list({key for parts, _ in explained.values() for _, key, _, _ in parts}))
    out = {}
    for pair, (parts, rest) in explained.items():
        reasons = [Reason(kind, text.replace("{name}", names.get(key, "?")), w) for kind, key, w, text in parts]
        reasons.extend(rest)
        reasons.sort(key=lambda r: -r.weight)
        out[pair] = tuple(reasons)
    return out


def render_reasons(loaded: LoadedModel, pairs: list[tuple[int, int]]) -> dict[int, tuple[Reason, ...]]:
    """`render_pair_reasons` for pairs of one attendee, keyed by the other one's index."""
    return {b: why for (_, b), why in render_pair_reasons(loaded, pairs).items()}


class LocalModelBackend(RecommendationBackend):
    """Serving from the published version, and the training seam of `recommendations.training`
    (`training_fingerprint` + `fit`): the orchestration there decides idempotence and publishing."""

    name = BACKEND_NAME

    def training_fingerprint(self, *, event, config: EngineConfig | None = None, learn: bool = True) -> str:
        return load_event_data(event=event).fingerprint(config or default_config(event=event), learn=learn)

    def fit(self, *, event, config: EngineConfig | None = None, learn: bool = True):
        # Imported here: training imports serving, which loads backends (this module) by path.
        from .training import FitResult

        result = fit_local_model(event=event, config=config, learn=learn)
        # No baseline for the publish gate: the fit already put the obvious lists (popularity,
        # repeat + popularity) against the learned ones on the event's own split and serves
        # whichever won, so the first version always serves (WHY: a gate that kept a first
        # version which lost to popularity left the event with nothing at all).
        ranker = result.metrics["ranker"]
        return FitResult(
            metrics=dict(result.metrics),
            baseline_metrics={},
            baseline_name="",
            reference=f"{ranker['name']} chosen on the event's own split ({ranker['kind']})",
            artifact=result.artifact,
            artifact_bytes=result.artifact_bytes,
            n_attendees=result.stats["attendees"],
            n_contexts=result.stats["contexts"],
            n_interactions=result.stats["interactions"],
            config=result.config | {"max_interaction_id": result.stats["max_interaction_id"]},
        )

    def availability(self, *, event) -> tuple[bool, str]:
        if published_version(event=event) is None:
            return False, NO_PUBLISHED_VERSION.format(event=event.slug)
        return True, ""

    def candidates(self, *, event, attendee, limit: int) -> list[Candidate]:
        version = published_version(event=event)
        if version is None:
            raise Unavailable(NO_PUBLISHED_VERSION.format(event=event.slug))
        loaded = loaded_model(version)
        a = loaded.index_of(attendee.pk)
        # The live list (the Celery worker's model, updated in real time) first: it also covers an
        # attendee who joined after training, whom this process's copy of the artifact lacks.
        live = live_list(version.pk, attendee.pk)
        if isinstance(live, list):  # written by a process of the previous release: pairs only
            live = {"items": live, "why": {}, "contexts": loaded.n_contexts_of(a) if a is not None else 0}
        if live is not None:
            model_part = self._live_candidates(loaded, live, a, limit)
            contexts = int(live["contexts"])
        elif a is not None:
            model_part = self._model_candidates(loaded, a, limit)
            contexts = loaded.n_contexts_of(a)
        else:
            model_part, contexts = [], 0
        share = min(1.0, contexts / BLEND_FULL_AT)
        if share >= 1.0:
            return model_part[:limit]
        rules_part = rules_candidates(event=event, attendee=attendee, limit=limit)
        return blend(model_part, rules_part, share=share, limit=limit)

    def _model_candidates(self, loaded, a: int, limit: int) -> list[Candidate]:
        idx, scores = loaded.ranked(a, max(limit, 1))
        ranked = [(int(loaded.attendee_ids[b]), float(s)) for b, s in zip(idx.tolist(), scores.tolist(), strict=True)]
        return self._explained(loaded, a, ranked, {})

    def _live_candidates(self, loaded, live: dict, a: int | None, limit: int) -> list[Candidate]:
        ranked = [(int(pk), float(s)) for pk, s in live["items"][:limit]]
        why = {int(pk): tuple(Reason(*r) for r in reasons) for pk, reasons in live["why"].items()}
        return self._explained(loaded, a, ranked, why)

    def _explained(self, loaded, a: int | None, ranked, given: dict[int, tuple[Reason, ...]]) -> list[Candidate]:
        """Candidates with their reasons: those `given` (the worker's, for pairs that changed since
        training), else this process's explanation from the published artifact."""
        pairs = [
            (a, i) for pk, _ in ranked if pk not in given and a is not None and (i := loaded.index_of(pk)) is not None
        ]
        with loaded.lock:
            reasons = render_reasons(loaded, pairs) if pairs else {}
        out = []
        for pk, score in ranked:
            i = loaded.index_of(pk)
            why = given.get(pk) or (reasons.get(i, ()) if i is not None else ())
            if not why:
                if score <= 0.0:
                    continue  # the engine's popularity filler with nothing to say: not a suggestion
                why = (Reason("recent", RECENT_TEXT, score),)  # kept for entries of an older format
            out.append(Candidate(pk, score, why))
        return out


def blend(model_part: list[Candidate], rules_part: list[Candidate], *, share: float, limit: int) -> list[Candidate]:
    """share x model (scaled by its best) + (1 - share) x rules (scaled by its best). A source
    with nothing to say leaves the other one as it is (raw scores, unscaled)."""
    if not rules_part or share >= 1.0:
        return model_part[:limit]
    if not model_part or share <= 0.0:
        return rules_part[:limit]

    def scaled(cands: list[Candidate], weight: float) -> dict[int, tuple[float, tuple[Reason, ...]]]:
        top = max((c.score for c in cands), default=0.0)
        if top <= 0 or weight <= 0:
            return {}
        f = weight / top
        return {
            c.attendee_id: (c.score * f, tuple(Reason(r.kind, r.text, r.weight * f) for r in c.reasons)) for c in cands
        }

    m, r = scaled(model_part, share), scaled(rules_part, 1.0 - share)
    out = []
    for pk in m.keys() | r.keys():
        ms, mr = m.get(pk, (0.0, ()))
        rs, rr = r.get(pk, (0.0, ()))
        out.append(Candidate(pk, ms + rs, tuple(sorted(mr + rr, key=lambda x: -x.weight))))
    out.sort(key=lambda c: (-c.score, c.attendee_id))
    return out[:limit]
