"""Training the local model: its configuration (defaults, presets, overrides), the per-event choice
of ranking on the event's own split, the fit of the whole event into a stored artifact, and the
offline metrics a version publishes. The arithmetic is `recommendations.engine`'s.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from events.enums import EnginePreset
from events.models import Event
from recommendations.backends.local import artifacts
from recommendations.backends.local.inputs import load_event_data
from recommendations.engine import FACE_TO_FACE, EngineConfig, fit
from recommendations.engine.ranker import (
    POPULARITY_PARTNERS,
    REPEAT_POPULARITY,
    SPLIT_AT,
    Choice,
    K,
    choose_ranker,
)
from recommendations.models import ModelVersion

logger = logging.getLogger(__name__)


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
    artifacts.upload(folder)  # with MODEL_ARTIFACT_BUCKET: every process can load it
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
    """Train synchronously through the one training path (`recommendations.jobs.training.run_training`:
    a TrainingRun row, idempotence by fingerprint, the publish gate) and return the version the
    run made or found. Raises ValueError with the run's message when no version came out of it
    (the fit failed, or another run of the event is in progress)."""
    from recommendations.jobs.training import run_training  # training imports serving, which loads this module

    run = run_training(event=event, trigger=trigger, config=config, learn=learn)
    if run.model_version is None:
        raise ValueError(run.message)
    return run.model_version
