"""The live source for `benchmarks/serve.py`: a lookup in a precomputed top-k neighbour table,
which is what the local model's serving step amounts to (it computes neighbours at training
time and on each real-time update, not per request). Deterministic per attendee, so that a run
is repeatable; the model's own arithmetic is measured by the recsys benchmarks, not here."""

import numpy as np

from events.models import Attendee
from recommendations.backends import Candidate, Reason, RecommendationBackend

_RANGES: dict[int, tuple[int, int]] = {}


class TableBackend(RecommendationBackend):
    name = "local"

    def candidates(self, *, event, attendee, limit):
        if event.pk not in _RANGES:
            ids = Attendee.objects.filter(event=event).order_by("pk").values_list("pk", flat=True)
            _RANGES[event.pk] = (ids.first(), ids.count())
        first, n = _RANGES[event.pk]
        rng = np.random.default_rng(attendee.pk)
        picks = np.unique(first + rng.integers(0, n, size=limit))
        scores = np.sort(rng.random(len(picks)))[::-1]
        return [
            Candidate(
                int(pk),
                float(score),
                (Reason(kind="shared_room", text="You both spent 40 min in 'Scaling Postgres'", weight=float(score)),),
            )
            for pk, score in zip(picks, scores, strict=True)
        ]
