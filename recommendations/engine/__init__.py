"""Local "people to meet" recommender: pure numpy/numba core, no Django.

Attendees are items, contexts (rooms, content, tags, time-windowed sessions) are users.
Public API::

    from recommendations.engine import InteractionArrays, EngineConfig, fit, Model
    model = fit(InteractionArrays(att, ctx, dwell, n_att, n_ctx, start, end), EngineConfig())
    idx, scores = model.neighbours(a, k=10, exclude=already_met)
    why = model.explain(a, b)          # feature contributions, shared contexts, people in common
    rows = model.update(new_interactions)   # real time, no refit
    model.save("model.npz"); Model.load("model.npz")
"""

from recommendations.engine.model import FEATURE_WEIGHTS, Model, fit, merge_duplicates, warm_up
from recommendations.engine.types import FACE_TO_FACE, EngineConfig, Explanation, InteractionArrays

__all__ = [
    "FACE_TO_FACE",
    "FEATURE_WEIGHTS",
    "EngineConfig",
    "Explanation",
    "InteractionArrays",
    "Model",
    "fit",
    "merge_duplicates",
    "warm_up",
]
