"""How to rank, decided per event: learned on the event's own earlier interactions, validated on its
later ones, and never worse than the obvious list (pure numpy + scikit-learn, no Django).

Why per event: real conferences differ. On a large, sparse one (SFHH09) co-presence, repeat
meetings and people met in common beat "the most sociable people"; on a small, dense one (WS16)
everyone has been near everyone, and the most sociable people are hard to beat. One setting tuned
on one event did not carry over to the next, so every training decides again, on that event.

The procedure (`choose_ranker`), all on the event's own interactions:

1. **Split by time.** The earliest ``SPLIT_AT`` (half) of the rows are the history, the rest the
   future.
2. **Truth.** Two attendees *meet* in the future when their expected face time there reaches
   ``MEET_SECONDS``: over every context they share (``2 <= size <= TRUTH_MAX_CONTEXT``), their two
   stays (geometric mean) times the chance that two of its members talk, ``min(1, TALK_SHARE / size)``.
   In a pair's own session that is all their time together; in a room of 40 a twentieth of it;
   a keynote counts for nothing. They have *met* in the history when they probably talked there
   (the chance that they talked in at least one shared context, same model, is at least
   ``MET_PROBABILITY``). "New" targets are future meetings of people who had not met.
3. **Candidates.** Engine configurations, each fitted on the history and scored on the future:
   - *learned*: for each structure of the family (``STRUCTURES``: rooms and talks, face-to-face
     contact sessions), the five stage-2 weights (``FEATURE_WEIGHTS``: co-presence, people met in
     common, repeat meetings, sociability, activity) fitted by logistic regression on
     (attendee, candidate) pairs, label = they meet; both uses are in the fit, every candidate of an
     attendee and their not-yet-met candidates, so one list serves "all" and "people you have not
     met". Scored on the same split: five weights over tens of thousands of pairs barely overfit,
     while scoring out of fold (folds of attendees) moved a structure's new-only recall by a
     fifth with the fold draw, more than the differences it had to decide.
   - *baselines*: popularity by distinct partners, popularity by time among people, and repeat
     meetings padded by popularity: the obvious lists, computed in the same run.
4. **Choice.** A learned candidate serves only if, on both targets (precision@10 for "all",
   recall@10 for "new"), it reaches ``TOLERANCE`` of the best baseline and beats the baselines by
   ``MARGIN`` on the mean of the two ratios; the best such candidate wins. Otherwise the baseline with the best "all"
   precision serves (the list that people will most likely be met from). A target with fewer than
   ``MIN_TARGETS`` attendees to score is left out of the comparison, and when "all" has fewer, there
   is nothing to learn from: the event's own configuration (defaults or preset) serves as a prior.
5. **Serving.** The winner's configuration (structure and weights) is fitted on the whole event
   by the caller; whichever wins, it serves through the same engine (real-time updates, reasons).

Deterministic: the negatives drawn for the fit come from ``seed``, scikit-learn's lbfgs solver has
no randomness, and every ordering ties on the lower index, as the engine does.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from recommendations.engine.model import FEATURE_WEIGHTS, Model, fit, merge_duplicates
from recommendations.engine.types import FACE_TO_FACE, EngineConfig, InteractionArrays

# Halves: the later half is a future long enough to hold meetings that are not just the history's
# continuation (with the last 30 % only, late-afternoon reunions of morning contacts dominated it,
# and structures that find tomorrow's new contacts ranked last: see docs/local-recommender.md).
SPLIT_AT = 0.5
# A bound on the work (pairs of a context grow as its size squared), not on the meaning: the talk
# chance already makes a large context count for little (a 200-person room for an hour: 36 s).
TRUTH_MAX_CONTEXT = 200
MEET_SECONDS = 60.0
TALK_SHARE = 2.0
MET_PROBABILITY = 0.5
K = 10
MAX_TARGETS = 1000  # attendees scored on the split, at most: enough to separate rankers
FIT_TARGETS = 500  # of them, whose pairs fit the five weights (five weights need far fewer pairs than that)
MIN_TARGETS = 20
TOLERANCE = 0.95
# A learned ranking replaces the obvious list only when it is better by this much on average:
# five weights fitted and scored on the same split flatter it a little, and the obvious list is
# the one an organizer can explain.
MARGIN = 1.02
FILL = 64  # candidates added per row from the top of each popularity order (the engine's fill list)
PAIRS = 100_000  # negatives drawn for the fit, at most, over all targets (all positives are kept)

#: the stage-1 structures the weights are learned on; their weights are placeholders
STRUCTURE_FIELDS = (
    "popularity_discount",
    "min_co_count",
    "context_cap",
    "context_cap_percentile",
    "context_cap_min",
    "same_time_bonus",
    "value_transform",
    "recency_half_life",
    "direct_transform",
)
ROOMS, FACE_TO_FACE_NAME, CONFIGURED = "rooms", "face-to-face", "configured"
POPULARITY_PARTNERS = "popularity (partners)"
POPULARITY_TIME = "popularity (time among people)"
REPEAT_POPULARITY = "repeat + popularity"
BASELINES = (POPULARITY_PARTNERS, POPULARITY_TIME, REPEAT_POPULARITY)
FEATURE_LABELS = {
    "w_direct": "time together",
    "w_two_hop": "people met in common",
    "w_repeat": "repeat meetings",
    "w_social": "sociability",
    "w_activity": "time among people",
}
# Field overrides for dataclasses.replace, typed as its keyword arguments are (fields of any type).
_ZERO: dict[str, Any] = dict.fromkeys(FEATURE_WEIGHTS, 0.0)


def structures(base: EngineConfig) -> dict[str, EngineConfig]:
    """The family the weights are learned on, each with the event's other settings (pool sizes,
    top_k): the structure for rooms and talks (the engine's defaults), the one for face-to-face
    contact sessions (``FACE_TO_FACE``), and the event's own when it is neither (settings or
    ``train --config``). The first is the one the baselines are scored on."""
    rooms = dataclasses.replace(base, **_rooms_structure())
    f2f = dataclasses.replace(base, **{f: getattr(FACE_TO_FACE, f) for f in STRUCTURE_FIELDS})
    out = {ROOMS: rooms, FACE_TO_FACE_NAME: f2f}
    if not any(_same_structure(base, c) for c in out.values()):
        out = {CONFIGURED: base, **out}
    return out


def _same_structure(a: EngineConfig, b: EngineConfig) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in STRUCTURE_FIELDS)


def baseline_configs(base: EngineConfig) -> dict[str, EngineConfig]:
    """The obvious lists as engine configurations on the event's structure, so that whichever
    wins serves through the same engine (real-time updates, reasons)."""
    return {
        POPULARITY_PARTNERS: dataclasses.replace(base, **_ZERO | {"w_social": 1.0}),
        POPULARITY_TIME: dataclasses.replace(base, **_ZERO | {"w_activity": 1.0}),
        # log1p(shared contexts) >= 0.69 for anyone met, the prior at most ~0.2: met people first,
        # by how often and how long, then the most active.
        REPEAT_POPULARITY: dataclasses.replace(base, **_ZERO | {"w_direct": 1.0, "w_repeat": 1.0, "w_activity": 0.01}),
    }


# --- Truth -----------------------------------------------------------------------------------------


def time_split(x: InteractionArrays, at: float = SPLIT_AT) -> tuple[InteractionArrays, InteractionArrays] | None:
    """(history, future): rows starting before the ``at`` quantile of start times, and the rest."""
    if x.attendee.shape[0] < 10:
        return None
    t = x.starts()
    cut = float(np.quantile(t, at))
    early = t < cut
    if not early.any() or early.all():
        return None

    def part(m: np.ndarray) -> InteractionArrays:
        return InteractionArrays(
            x.attendee[m], x.context[m], x.weight[m], x.n_attendees, x.n_contexts, t[m], x.ends()[m]
        )

    return part(early), part(~early)


def _pair_sums(x: InteractionArrays, entry, rows: np.ndarray | None = None) -> sparse.csr_matrix:
    """Sum over the contexts two attendees share (2 <= size <= TRUTH_MAX_CONTEXT) of the product of
    their two entries, ``entry(weights, sizes)`` per (attendee, context): the sparse product
    E[rows] @ E.T (every row when ``rows`` is None), without self-pairs. WHY a product: one pass of
    compiled sparse arithmetic, where a loop over the contexts in Python took seconds at 50,000
    attendees; WHY rows: the split needs the pairs of the attendees it scores, not of everyone."""
    att, ctx, w, _, _ = merge_duplicates(x)
    size = np.bincount(ctx, minlength=x.n_contexts)[ctx]
    keep = (size >= 2) & (size <= TRUTH_MAX_CONTEXT)
    n = x.n_attendees
    values = entry(w[keep], size[keep].astype(np.float64))
    e = sparse.csr_matrix((values, (att[keep], ctx[keep])), shape=(n, x.n_contexts))
    if rows is None:
        rows = np.arange(n, dtype=np.int64)
    out = (e[rows] @ e.T).tocoo()
    mine = out.col != rows[out.row]  # no self-pairs
    return sparse.csr_matrix((out.data[mine], (out.row[mine], out.col[mine])), shape=(rows.shape[0], n))


def _talk_chance(sizes: np.ndarray) -> np.ndarray:
    return np.minimum(1.0, TALK_SHARE / sizes)


def meetings(x: InteractionArrays, rows: np.ndarray | None = None) -> sparse.csr_matrix:
    """Pairs whose expected face time in ``x`` reaches MEET_SECONDS (boolean; one matrix row per
    ``rows``, default everyone): over their shared contexts, the geometric mean of their two stays
    times the talk chance."""
    face = _pair_sums(x, lambda w, sizes: np.sqrt(w * _talk_chance(sizes)), rows)
    return face >= MEET_SECONDS


def met_before(x: InteractionArrays, rows: np.ndarray | None = None) -> sparse.csr_matrix:
    """Pairs who probably talked in ``x``: the chance that they did in at least one shared context
    (independent contexts, ``_talk_chance`` each) reaches MET_PROBABILITY."""
    never = _pair_sums(x, lambda w, sizes: np.sqrt(_never_talked(sizes)), rows)
    return never >= _MET_LEVEL


def _never_talked(sizes: np.ndarray) -> np.ndarray:
    """-log(1 - p) of the talk chance p in contexts of these sizes (a pair's sum over its shared
    contexts reaching _MET_LEVEL means they probably talked); p = 1 (a pair's own session) counts
    as near certain."""
    return -np.log1p(-np.minimum(_talk_chance(sizes), 0.999999))


_MET_LEVEL = -math.log1p(-MET_PROBABILITY) - 1e-12


def met_in_model(model: Model, a: int) -> np.ndarray:
    """`met_before`'s row of attendee ``a``, read from a fitted model's own context membership
    (sorted indices). One row costs the sizes of ``a``'s contexts, where `met_before` over
    everyone is a sparse product over all pairs (4 s at size M); and it follows the model's
    real-time updates."""
    if a >= model.n_attendees:
        return np.empty(0, dtype=np.int64)
    ctx = model.A.members(a)
    sizes = model.C.length[ctx]
    keep = (sizes >= 2) & (sizes <= TRUTH_MAX_CONTEXT)
    ctx, sizes = ctx[keep], sizes[keep]
    if not ctx.shape[0]:
        return np.empty(0, dtype=np.int64)
    members = [model.C.members(int(g)) for g in ctx.tolist()]
    who = np.concatenate(members)
    chance = np.repeat(_never_talked(sizes.astype(np.float64)), sizes)
    total = np.bincount(who, weights=chance, minlength=model.n_attendees)
    total[a] = 0.0
    return np.flatnonzero(total >= _MET_LEVEL).astype(np.int64)


# --- Scores ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """A candidate on the validation split: precision@10 and recall@10 of "all" future meetings,
    recall@10 and precision@10 of "new" ones (people not met before), and how many attendees each
    mean is over."""

    all_p: float = 0.0
    all_r: float = 0.0
    new_r: float = 0.0
    new_p: float = 0.0
    n_all: int = 0
    n_new: int = 0

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in dataclasses.asdict(self).items()}


@dataclass
class Choice:
    """What serves an event, and why: ``config`` is the engine configuration to fit on all of it."""

    name: str
    kind: str  # "learned", "baseline" or "prior"
    config: EngineConfig
    reason: str
    validation: dict[str, Score] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)  # feature label -> share of the score
    seconds: float = 0.0
    candidates: dict[str, EngineConfig] = field(default_factory=dict)  # every scored one, by name

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "reason": self.reason,
            "importance": self.importance,
            "validation": {k: v.to_dict() for k, v in self.validation.items()},
        }


@dataclass
class _Split:
    """One validation split, with everything the candidates are scored against."""

    future: dict[int, np.ndarray]  # target -> sorted partners met in the future
    met: dict[int, np.ndarray]  # target -> sorted partners met in the history
    targets: np.ndarray  # attendees scored on "all" (active in the history, meet in the future)


def _rows_of(m: sparse.csr_matrix, rows: np.ndarray, keys: np.ndarray) -> dict[int, np.ndarray]:
    """Matrix row i (for attendee keys[i]) as a sorted array of column indices, for ``rows``."""
    return {int(keys[i]): np.sort(m.indices[m.indptr[i] : m.indptr[i + 1]]).astype(np.int64) for i in rows.tolist()}


def _make_split(history: InteractionArrays, future: InteractionArrays, seed: int) -> _Split:
    """Targets: attendees active in the history who meet someone in the future, at most
    MAX_TARGETS drawn with ``seed``; their future meetings and the people they met before."""
    active = np.zeros(history.n_attendees, dtype=bool)
    active[history.attendee] = True
    later = np.zeros(future.n_attendees, dtype=bool)
    later[future.attendee] = True
    pool = np.flatnonzero(active & later)
    rng = np.random.default_rng(seed)
    if pool.shape[0] > 2 * MAX_TARGETS:  # enough spare for those who meet nobody
        pool = np.sort(rng.choice(pool, 2 * MAX_TARGETS, replace=False))
    meet = meetings(future, pool)
    with_future = np.flatnonzero(np.diff(meet.indptr) > 0)
    if with_future.shape[0] > MAX_TARGETS:
        with_future = np.sort(rng.choice(with_future, MAX_TARGETS, replace=False))
    targets = pool[with_future]
    met = met_before(history, targets)
    return _Split(
        _rows_of(meet, with_future, pool),
        _rows_of(met, np.arange(targets.shape[0]), targets),
        targets,
    )


def _evidence(model: Model, a: int) -> tuple[np.ndarray, np.ndarray]:
    """The candidates with pair evidence for ``a`` (its stage-1 partners and their partners),
    sorted, and their (m, 5) unweighted features, as `Model.features` gives them."""
    direct, two, _, rep = model.row_features(a)
    cands = np.unique(np.fromiter([*direct, *two], dtype=np.int64, count=len(direct) + len(two)))
    cands = cands[cands != a]
    out = np.zeros((cands.shape[0], len(FEATURE_WEIGHTS)))
    dmax = float(model.n1_s[a, 0]) if model.n1_i[a, 0] >= 0 else 0.0
    tmax = max(two.values(), default=0.0)
    for j, b in enumerate(cands.tolist()):
        if b in direct:
            out[j, 0] = model._x1(direct[b], dmax)
            out[j, 2] = rep[b]
        if tmax > 0.0 and b in two:
            out[j, 1] = two[b] / tmax
    out[:, 3] = model.social[cands]
    out[:, 4] = model.activity[cands]
    return cands, out


@dataclass
class _Rows:
    """Per target: the candidates with pair evidence (sorted) and their features; the model's
    per-attendee priors for everyone else."""

    model: Model
    split: _Split
    cands: dict[int, np.ndarray]
    feats: dict[int, np.ndarray]
    future_sets: dict[int, set[int]]
    met_sets: dict[int, set[int]]

    def prior_features(self, b: np.ndarray) -> np.ndarray:
        out = np.zeros((b.shape[0], len(FEATURE_WEIGHTS)))
        out[:, 3] = self.model.social[b]
        out[:, 4] = self.model.activity[b]
        return out


def _rows(model: Model, split: _Split) -> _Rows:
    out = _Rows(model, split, {}, {}, {}, {})
    for a in split.targets.tolist():
        out.cands[a], out.feats[a] = _evidence(model, a)
        out.future_sets[a] = set(split.future[a].tolist())
        out.met_sets[a] = set(split.met[a].tolist())
    return out


def _fill(rows: _Rows, w: np.ndarray) -> np.ndarray:
    """The engine's fill list for a ranker with weights ``w``: the top ``_pop_len`` attendees by
    its prior, sorted by index."""
    m = rows.model
    prior = w[3] * m.social + w[4] * m.activity
    return np.sort(np.lexsort((np.arange(prior.shape[0]), -prior))[: m._pop_len])


def _score(rows: _Rows, weights: dict[int, np.ndarray]) -> Score:
    """A ranker on the split, as the engine would rank: for each target ``a``, its candidates
    with pair evidence and the ranker's fill list, by ``weights[a]``, ties on the lower index; a
    future partner outside both cannot be reached and counts as missed."""
    sums = np.zeros(4)
    n_all = n_new = 0
    fills: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    for a, feats in rows.feats.items():
        w = weights[a]
        key = w.tobytes()
        if key not in fills:
            fill = _fill(rows, w)
            fills[key] = (fill, rows.prior_features(fill) @ w)
        fill, fill_scores = fills[key]
        fresh_fill = ~np.isin(fill, rows.cands[a], assume_unique=True) & (fill != a)
        cands = np.concatenate([rows.cands[a], fill[fresh_fill]])
        s = np.concatenate([feats @ w, fill_scores[fresh_fill]])
        order = cands[np.lexsort((cands, -s))].tolist()
        future, met = rows.future_sets[a], rows.met_sets[a]
        hits = sum(1 for b in order[:K] if b in future)
        sums[0] += hits / K
        sums[1] += hits / len(future)
        n_all += 1
        new_future = future - met
        if new_future:
            shown = []
            for b in order:  # the first K not met before: what "people you have not met" shows
                if b not in met:
                    shown.append(b)
                    if len(shown) == K:
                        break
            hits = sum(1 for b in shown if b in new_future)
            sums[2] += hits / len(new_future)
            sums[3] += hits / K
            n_new += 1
    return Score(
        all_p=sums[0] / n_all if n_all else 0.0,
        all_r=sums[1] / n_all if n_all else 0.0,
        new_r=sums[2] / n_new if n_new else 0.0,
        new_p=sums[3] / n_new if n_new else 0.0,
        n_all=n_all,
        n_new=n_new,
    )


def _weights_of(cfg: EngineConfig) -> np.ndarray:
    return np.array([getattr(cfg, name) for name in FEATURE_WEIGHTS], dtype=np.float64)


def _training_set(rows: _Rows, targets: list[int], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted pairs for the fit, for both uses of the list: every candidate of a target ("all")
    and its not-yet-met candidates ("new"). A target's candidates are everyone else: those with
    pair evidence, and the rest, who differ only by their prior. Every positive is kept; of the
    negatives of each kind at most ``PAIRS`` in all are drawn (with ``seed``) and weighted up to the
    number they stand for, so the fit sees the whole event's base rates (WHY: drawn from the
    popular fill lists only, the negatives taught the fit that activity predicts *not* meeting)."""
    rng = np.random.default_rng(seed)
    n = rows.model.n_attendees
    per_kind = max(20, PAIRS // max(1, 4 * min(len(targets), FIT_TARGETS)))  # two uses x two kinds
    xs, ys, ws = [], [], []

    def add(feats: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> None:
        xs.append(feats)
        ys.append(labels)
        ws.append(weights)

    if len(targets) > FIT_TARGETS:
        targets = sorted(rng.choice(targets, FIT_TARGETS, replace=False).tolist())
    no_one = np.zeros(0, dtype=np.int64)
    for a in targets:
        future, met = rows.split.future[a], rows.split.met[a]
        cands, feats = rows.cands[a], rows.feats[a]
        future_c = np.isin(cands, future, assume_unique=True)
        met_c = np.isin(cands, met, assume_unique=True)
        for use_new in (False, True):
            excluded = met if use_new else no_one
            wanted = np.setdiff1d(future, excluded, assume_unique=True) if use_new else future
            if not wanted.shape[0]:
                continue
            # candidates with pair evidence: all positives, a weighted draw of the negatives
            keep = ~met_c if use_new else np.ones(cands.shape[0], dtype=bool)
            truth = future_c & keep
            pos, neg = np.flatnonzero(truth), np.flatnonzero(keep & ~truth)
            w_neg = 1.0
            if neg.shape[0] > per_kind:
                w_neg = neg.shape[0] / per_kind
                neg = np.sort(rng.choice(neg, per_kind, replace=False))
            idx = np.concatenate([pos, neg])
            add(feats[idx], truth[idx], np.concatenate([np.ones(pos.shape[0]), np.full(neg.shape[0], w_neg)]))
            # everyone else (no pair evidence): the positives, and negatives drawn at random
            in_cands = np.isin(wanted, cands, assume_unique=True)
            others_pos = wanted[~in_cands]
            blocked = np.unique(np.concatenate([cands, excluded, wanted, [a]]))
            n_neg = n - blocked.shape[0]
            if others_pos.shape[0]:
                add(
                    rows.prior_features(others_pos),
                    np.ones(others_pos.shape[0], dtype=bool),
                    np.ones(others_pos.shape[0]),
                )
            if n_neg > 0:
                draw = rng.integers(0, n, size=min(n_neg, per_kind) * 2 + 8)
                draw = draw[~np.isin(draw, blocked)][: min(n_neg, per_kind)]
                if draw.shape[0]:
                    add(
                        rows.prior_features(draw),
                        np.zeros(draw.shape[0], dtype=bool),
                        np.full(draw.shape[0], n_neg / draw.shape[0]),
                    )
    if not xs:
        return np.zeros((0, len(FEATURE_WEIGHTS))), np.zeros(0, dtype=bool), np.zeros(0)
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws)


def _fit_weights(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Raw weights (for the engine) and standardised ones (for the importance shares), or None
    when the pairs hold one class only."""
    if y.size == 0 or y.all() or not y.any():
        return None
    scaler = StandardScaler().fit(x, sample_weight=w)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), y, sample_weight=w / w.mean())
    std = model.coef_[0]
    return std / scaler.scale_, std


def importance_shares(std_weights: np.ndarray) -> dict[str, float]:
    """Each feature's share of the learned score, from the weights on standardised features
    (|w| / sum |w|), by the features' readable names, largest first."""
    total = float(np.abs(std_weights).sum())
    if total <= 0.0:
        return {}
    shares = {
        FEATURE_LABELS[name]: round(float(abs(w)) / total, 2)
        for name, w in zip(FEATURE_WEIGHTS, std_weights.tolist(), strict=True)
    }
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


def _with_weights(cfg: EngineConfig, w: np.ndarray) -> EngineConfig:
    weights: dict[str, Any] = {name: round(float(v), 6) for name, v in zip(FEATURE_WEIGHTS, w.tolist(), strict=True)}
    return dataclasses.replace(cfg, **weights)


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else (1.0 if value <= 0 else math.inf)


def choose_ranker(x: InteractionArrays, base: EngineConfig, *, seed: int = 0, learn: bool = True) -> Choice:
    """Decide how this event ranks (the module's procedure). ``base`` is the event's own
    configuration: its structure is one of the family, and it serves as is (a prior) when the
    event is too small to learn from. ``learn=False`` (``train --fixed``) serves ``base`` as it
    is, still scored beside the baselines on the same split so that the comparison is visible."""
    started = time.perf_counter()
    parts = time_split(x)
    if parts is None:
        return Choice(CONFIGURED, "prior", base, NOT_ENOUGH.format(n=0, need=MIN_TARGETS))
    history, future = parts
    split = _make_split(history, future, seed)
    n_targets = int(split.targets.shape[0])
    if not n_targets:
        return Choice(CONFIGURED, "prior", base, NOT_ENOUGH.format(n=0, need=MIN_TARGETS))
    # Too few to learn from: the configured settings serve, scored beside the baselines anyway.
    prior = learn and n_targets < MIN_TARGETS
    learn = learn and not prior

    validation: dict[str, Score] = {}
    configs: dict[str, EngineConfig] = {}
    importance: dict[str, dict[str, float]] = {}
    targets = split.targets.tolist()
    if learn:
        family = structures(base)
    else:
        rooms = dataclasses.replace(base, **_rooms_structure())
        family = {ROOMS: rooms} | ({} if _same_structure(base, rooms) else {CONFIGURED: base})
    # Baselines on the first structure (rooms and talks), and its learned weights, share one fit.
    for name, structure in family.items():
        model = fit(history, structure)
        rows = _rows(model, split)
        if not validation:
            for bname, bcfg in baseline_configs(structure).items():
                validation[bname] = _score(rows, dict.fromkeys(targets, _weights_of(bcfg)))
                configs[bname] = bcfg
        if not learn:
            if _same_structure(structure, base):
                validation[CONFIGURED] = _score(rows, dict.fromkeys(targets, _weights_of(base)))
            continue
        learned = _fit_weights(*_training_set(rows, targets, seed))
        if learned is None:
            continue
        lname = f"learned ({name})"
        validation[lname] = _score(rows, dict.fromkeys(targets, learned[0]))
        configs[lname] = _with_weights(structure, learned[0])
        importance[lname] = importance_shares(learned[1])

    if not learn:
        kind, reason = ("prior", NOT_ENOUGH.format(n=n_targets, need=MIN_TARGETS)) if prior else ("fixed", FIXED)
        configs[CONFIGURED] = base
        return Choice(
            CONFIGURED,
            kind,
            base,
            reason,
            validation,
            seconds=time.perf_counter() - started,
            candidates={k: v for k, v in configs.items() if k in validation},
        )
    name, kind, reason = _decide(validation)
    return Choice(
        name,
        kind,
        configs[name],
        reason,
        validation,
        importance.get(name, {}),
        seconds=time.perf_counter() - started,
        candidates=configs,
    )


def _rooms_structure() -> dict:
    return {f: getattr(EngineConfig(), f) for f in STRUCTURE_FIELDS}


FIXED = "Fixed settings (train --fixed): served as configured, not chosen."
NOT_ENOUGH = (
    "Too little later activity to learn from ({n} attendees to validate on, {need} needed): "
    "the event's configured settings serve."
)
LEARNED_WINS = (
    "{name} beats the obvious lists on the event's own later activity: "
    "all P@10 {all_p:.3f} (best baseline {base_all:.3f}), new R@10 {new_r:.3f} (best baseline {base_new:.3f})."
)
BASELINE_WINS = (
    "No learned ranking beat the obvious lists on the event's own later activity; "
    "{name} serves (all P@10 {all_p:.3f}, new R@10 {new_r:.3f})."
)


def _decide(validation: dict[str, Score]) -> tuple[str, str, str]:
    base = {k: v for k, v in validation.items() if k in BASELINES}
    best_all = max(v.all_p for v in base.values())
    best_new = max(v.new_r for v in base.values())
    use_new = all(v.n_new >= MIN_TARGETS for v in validation.values())
    best, best_gain = None, MARGIN
    for name, s in validation.items():
        if name in BASELINES:
            continue
        ratios = [_ratio(s.all_p, best_all)] + ([_ratio(s.new_r, best_new)] if use_new else [])
        gain = sum(ratios) / len(ratios)
        if min(ratios) >= TOLERANCE and gain >= best_gain:
            best, best_gain = name, gain
    if best is not None:
        s = validation[best]
        return (
            best,
            "learned",
            LEARNED_WINS.format(name=best, all_p=s.all_p, base_all=best_all, new_r=s.new_r, base_new=best_new),
        )
    # ties: the order of BASELINES (popularity first: the simplest list)
    name = max(BASELINES, key=lambda k: (base[k].all_p, -BASELINES.index(k)))
    s = base[name]
    return name, "baseline", BASELINE_WINS.format(name=name, all_p=s.all_p, new_r=s.new_r)
