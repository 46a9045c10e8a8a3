"""Inputs and configuration of the recommender engine (pure numpy, no Django)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class InteractionArrays:
    """Attendee x context interactions as aligned numpy arrays.

    Attendees are the *items*, contexts (rooms, talks, tags, time-windowed sessions) play the
    role of *users* (reverse mapping, like SIMS item-to-item).  Indices are dense
    ``0..n-1``; the Django layer owns the id <-> index mapping.

    ``weight`` is dwell seconds (or any positive event weight).  ``start``/``end`` are epoch
    seconds of the presence interval; pass ``None`` when unknown (every pair then counts as
    "same time": WHY — a tag or a content item has no time, so it must not be penalised).
    Repeated (attendee, context) rows are merged at fit time: weights add, the interval
    becomes [min start, max end].
    """

    attendee: np.ndarray
    context: np.ndarray
    weight: np.ndarray
    n_attendees: int
    n_contexts: int
    start: np.ndarray | None = None
    end: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = self.attendee.shape[0]
        if self.context.shape[0] != m or self.weight.shape[0] != m:
            raise ValueError("attendee, context and weight must have the same length")
        for arr in (self.start, self.end):
            if arr is not None and arr.shape[0] != m:
                raise ValueError("start/end must align with attendee")
        if m and (self.attendee.min() < 0 or self.attendee.max() >= self.n_attendees):
            raise ValueError("attendee index out of range")
        if m and (self.context.min() < 0 or self.context.max() >= self.n_contexts):
            raise ValueError("context index out of range")

    def starts(self) -> np.ndarray:
        return np.zeros(self.attendee.shape[0]) if self.start is None else self.start.astype(np.float64)

    def ends(self) -> np.ndarray:
        if self.end is not None:
            return self.end.astype(np.float64)
        return self.starts()


@dataclass(frozen=True)
class EngineConfig:
    """Knobs of the local recommender.  Defaults are generic, round values for rooms and talks
    (percentile cap with a floor of 64, no recency); for face-to-face contact sessions see
    :data:`FACE_TO_FACE`, learned on SFHH09 day 0 by ``benchmarks/sfhh09_quality.py``.

    Pair score of attendee ``a`` for candidate ``b``::

        direct(a,b) = sum_{c shared, size_c <= cap} idf_c * v_ac * v_bc * (1 + same_time_bonus * overlap_ab,c)
        idf_c       = (size_c - 1) ** -popularity_discount      # resource allocation: a member's
                                                                # attention is split over the others
        v_ac        = log1p(weight_ac / dwell_scale) [or sqrt(...)] * 0.5 ** ((t_ref - end_ac) / recency_half_life)
        overlap     = |[s_a,e_a] ∩ [s_b,e_b]| / min(len_a, len_b)   (1 when both are points and equal)

    ``direct`` is kept only when the pair shares >= ``min_co_count`` contexts; the strongest
    ``candidate_pool`` partners per attendee are stored (stage 1).  The final score (stage 2) is
    a small linear combination of four robust, scale-free features::

        score = w_direct * direct / max_row(direct)
              + w_two_hop * two_hop / max_row(two_hop)   # 2-step random walk over the top
                                                         # ``two_hop_fanout`` partners (resource allocation)
              + w_repeat * log1p(shared_contexts(a,b))   # repeated meetings (count, not strength)
              + w_social * log1p(degree_b)               # sociability: distinct co-present partners
              + w_activity * log1p(activity_b)           # time among people: sum over b's capped
                                                         # contexts of dwell / dwell_scale * ln(size)

    The last two depend on the candidate only (its *prior*: ``Model.prior``); ranked by them alone
    the list is "the most sociable people of the event", the obvious baseline. The weights are
    learned per event at training time (``recommendations.engine.ranker``); these defaults are
    what an event too small to learn from gets.
    """

    popularity_discount: float = 1.0
    min_co_count: int = 1
    context_cap: int | None = None  # absolute size cap; overrides the percentile cap
    context_cap_percentile: float = 99.0
    context_cap_min: int = 64  # the percentile cap never goes below this
    same_time_bonus: float = 1.0
    dwell_scale: float = 60.0
    value_transform: str = "log"  # "log": v = log1p(w/dwell_scale); "sqrt": v = sqrt(w/dwell_scale)
    recency_half_life: float | None = None  # seconds; None = no recency decay
    w_direct: float = 1.0
    w_two_hop: float = 0.5
    w_repeat: float = 0.0
    w_social: float = 0.1
    w_activity: float = 0.0
    direct_transform: str = "linear"  # "linear": direct/max_row; "log": log1p(direct)/log1p(max_row)
    candidate_pool: int = 32
    two_hop_fanout: int = 20
    top_k: int = 25

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> EngineConfig:
        return EngineConfig(**d)


# Contexts that are short face-to-face contact sessions (the connected components of proximity-
# badge contacts in 60 s windows, as in the SFHH09 protocol) rather than rooms and talks: the
# configuration that ``benchmarks/sfhh09_quality.py`` picks from SFHH09 day 0 alone (structure by
# grid search with the matchmaking objective, the four weights by logistic regression on three
# internal time splits; the script says whether its pick still equals this). Only scale-free
# settings: the cap is the 85th percentile of the event's session sizes, not a number of people.
# An event chooses it (``Event.engine_preset``, ``create_event --preset face-to-face``), and
# ``manage.py evaluate_sfhh09`` does unless given ``--config``. Not the product default, whose
# contexts are rooms (on the synthetic room events a cap at p85 drops popular community rooms).
FACE_TO_FACE = EngineConfig(
    popularity_discount=0.5,
    min_co_count=2,
    context_cap_percentile=85.0,
    context_cap_min=2,
    direct_transform="log",
    value_transform="sqrt",
    w_direct=0.444,
    w_two_hop=1.372,
    w_repeat=1.063,
    w_social=0.252,
)


@dataclass
class Explanation:
    """Why ``b`` is recommended to ``a``.

    ``features`` holds the weighted feature contributions; they sum to ``score`` (the same
    number the neighbour table holds).  ``contexts`` lists (context index, contribution to
    ``direct``) — these sum to ``direct_raw``; ``presence`` holds, in the same order, (a's weight,
    b's weight, overlap of their presence intervals) in each.  ``via`` lists (attendee index,
    2-hop weight): "people you both met".  ``degree_b`` backs a "very sociable" reason.
    """

    score: float
    features: dict[str, float]
    direct_raw: float
    contexts: list[tuple[int, float]] = field(default_factory=list)
    via: list[tuple[int, float]] = field(default_factory=list)
    degree_b: int = 0
    shared_contexts: int = 0
    presence: list[tuple[float, float, float]] = field(default_factory=list)
    company_seconds: float = 0.0  # b's time in contexts that count (within the cap, with others)
