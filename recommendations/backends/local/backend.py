"""The local model as a recommendation backend: the published version's list for an attendee (the
real-time list when there is one), explained, and blended with the rules engine while the
attendee has been in few contexts; and the training seam of `recommendations.jobs.training`.
"""

from __future__ import annotations

import logging

from recommendations.backends import Candidate, Reason, RecommendationBackend, Unavailable
from recommendations.backends.local.fit import default_config, fit_local_model
from recommendations.backends.local.inputs import load_event_data
from recommendations.backends.local.loaded import BACKEND_NAME, NO_PUBLISHED_VERSION, loaded_model, published_version
from recommendations.backends.local.realtime import live_list
from recommendations.backends.local.reasons import RECENT_TEXT, render_reasons
from recommendations.backends.rules import rules_candidates
from recommendations.engine import EngineConfig

logger = logging.getLogger(__name__)


# Blend with the rules engine (cold attendees): an attendee with fewer than BLEND_FULL_AT contexts in
# the model gets share = contexts / BLEND_FULL_AT of the model's evidence and the rest from the
# rules engine; each source is scaled to [0, 1] by its best candidate before mixing, so the share
# is the weight of each source's top pick. Five contexts: enough for co-presence to say more than
# the questionnaire (on sfhh09 the median attendee has dozens).
BLEND_FULL_AT = 5


class LocalModelBackend(RecommendationBackend):
    """Serving from the published version, and the training seam of `recommendations.jobs.training`
    (`training_fingerprint` + `fit`): the orchestration there decides idempotence and publishing."""

    name = BACKEND_NAME

    def training_fingerprint(self, *, event, config: EngineConfig | None = None, learn: bool = True) -> str:
        return load_event_data(event=event).fingerprint(config or default_config(event=event), learn=learn)

    def fit(self, *, event, config: EngineConfig | None = None, learn: bool = True):
        # Imported here: training imports serving, which loads backends (this module) by path.
        from recommendations.jobs.training import FitResult

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
