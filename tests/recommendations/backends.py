"""Deterministic test doubles of the backend interface (the real rules and local backends live
on another branch). Real classes, loaded from dotted paths like any backend; their answers come
from module-level tables that each test sets, and that the autouse fixture resets.

- `SCORES[name][viewer_id]` = [(candidate_id, score), ...]; a viewer without an entry gets every
  other attendee of the event, scored 1,000,000 - attendee id (so lower ids rank first).
- `UNAVAILABLE`: names of backends that raise `Unavailable`.
- `FIT`: what the trainable double's fit reports; `FIT_CALLS` counts fits.
"""

import hashlib

from events.models import Attendee, Interaction
from recommendations.backends import Candidate, Reason, RecommendationBackend, Unavailable
from recommendations.jobs.training import FitResult

SCORES: dict[str, dict[int, list[tuple[int, float]]]] = {}
UNAVAILABLE: set[str] = set()
FIT: dict = {}
FIT_CALLS: list[int] = []


def reset() -> None:
    SCORES.clear()
    UNAVAILABLE.clear()
    FIT.clear()
    FIT.update({"metrics": {"recall_at_10": 0.2}, "baseline": {"recall_at_10": 0.1}, "salt": ""})
    FIT_CALLS.clear()


class _DictBackend(RecommendationBackend):
    def candidates(self, *, event, attendee, limit):
        if self.name in UNAVAILABLE:
            raise Unavailable(f"{self.name} is switched off for this test")
        table = SCORES.get(self.name, {})
        if attendee.pk in table:
            pairs = table[attendee.pk]
        else:
            ids = Attendee.objects.filter(event=event).exclude(pk=attendee.pk).values_list("pk", flat=True)
            pairs = [(pk, 1_000_000.0 - pk) for pk in ids]
        pairs = sorted(pairs, key=lambda p: -p[1])[:limit]
        return [
            Candidate(pk, score, (Reason(kind=f"{self.name}_test", text=f"from {self.name}", weight=score),))
            for pk, score in pairs
        ]


class RulesDouble(_DictBackend):
    name = "rules"


class PersonalizeDouble(_DictBackend):
    name = "personalize"


class LocalDouble(_DictBackend):
    """Trainable: the fingerprint hashes the qualifying interactions, the fit reports `FIT`."""

    name = "local"

    def training_fingerprint(self, *, event) -> str:
        ids = Interaction.objects.filter(event=event, qualifies=True).order_by("pk").values_list("pk", flat=True)
        return hashlib.sha256(f"{list(ids)}{FIT['salt']}".encode()).hexdigest()

    def fit(self, *, event) -> FitResult:
        FIT_CALLS.append(event.pk)
        if FIT.get("raise"):
            raise RuntimeError(FIT["raise"])
        return FitResult(
            metrics=dict(FIT["metrics"]),
            baseline_metrics=dict(FIT["baseline"]),
            n_interactions=Interaction.objects.filter(event=event, qualifies=True).count(),
        )


BACKENDS = {
    "rules": "tests.recommendations.backends.RulesDouble",
    "local": "tests.recommendations.backends.LocalDouble",
    "personalize": "tests.recommendations.backends.PersonalizeDouble",
    # The real one: it reads the facts only, so a test states them instead of a table.
    "popularity": "recommendations.backends.popularity.PopularityBackend",
}
