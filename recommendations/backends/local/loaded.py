"""Published versions in memory, per process: the engine model and its id <-> index mappings, and
the ranked lists read from it (with room kept for people not met).
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path
from typing import overload

import numpy as np

from events.models import Event
from recommendations.backends import Unavailable
from recommendations.backends.local import artifacts
from recommendations.engine import Model
from recommendations.engine.ranker import (
    met_in_model,
)
from recommendations.models import ModelVersion

logger = logging.getLogger(__name__)


BACKEND_NAME = "local"


NO_PUBLISHED_VERSION = "No published local model for event {event!r} yet; run `manage.py train --event {event}`."


ARTIFACT_MISSING = "The artifact of model version {version} is missing at {path}."


# Long lists keep room for people the attendee has not met: at least this share of a list ranked
# from the artifact (`LoadedModel.ranked`). WHY: at a dense event everyone the model ranks first
# is someone already met, and a list of 100 held fewer than 10 new people for 43 of WS16's 95
# attendees although 20 were there to meet; one in ten is one page of the widget in a list of
# 100, and only the tail of a list gives way (chosen from the list's shape, not from any data).
NEW_PEOPLE_SHARE = 0.1


def artifact_folder(version: ModelVersion) -> Path:
    """Where this process reads `version`'s artifact (a copy from the bucket when there is one), or
    Unavailable saying why it cannot: what loading it and publishing it by hand both need."""
    try:
        folder = artifacts.local_folder(version.artifact)
    except artifacts.ArtifactUnavailable as exc:
        raise Unavailable(str(exc)) from exc
    if not (folder / "model.npz").exists():
        raise Unavailable(ARTIFACT_MISSING.format(version=version.number, path=folder))
    return folder


class LoadedModel:
    """A published version in memory: the engine model and its index. The real-time path mutates
    `model` in place under `lock`; `applied` holds the interaction ids it already added."""

    def __init__(self, version: ModelVersion) -> None:
        folder = artifact_folder(version)
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
            if floor == 0:  # a list under ten keeps no room: skip reading who was met
                return idx, scores
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
