"""SFHH09 face-to-face data set: loader, session construction and the evaluation protocol.

Pure python + numpy (no Django).  The protocol is the one in
``/work/shared/data/sfhh09/README.md``:

* history = day 0, future = day 1 (a day ends at the first quiet gap of 4 h or more, the night:
  see :func:`day_index`; rows are never shuffled);
* a "session" (the recommender's *context*) is one connected component of the contact
  graph inside a 60 s window (``window = t // 60``);
* interaction = (session, attendee, first tick ts, dwell = 20 s x ticks of that attendee
  in the session);
* evaluated attendees: history contacts >= 1 and >= 1 *meaningful* future partner
  (cumulative day-1 contact >= 60 s);  "all" = every meaningful future partner,
  "new-only" = those not met on day 0, with already-met people removed from candidates;
* metrics: mean recall@10, precision@10, hit@10.

WHY the module owns the baselines too: every figure (baselines and the engine) must be
computed by the same code path on the same candidate sets, side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommendations.engine.types import InteractionArrays

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "sfhh09" / "tij_SFHH.dat"  # CC0, see its README
TICK_S = 20
DAY_S = 86400
# A quiet gap this long between two contacts is a night: the next contact starts a new day.
NIGHT_GAP_S = 4 * 3600


@dataclass(frozen=True)
class Contacts:
    """Raw rows, with person ids mapped to a dense index 0..n_people-1 (sorted by raw id)."""

    t: np.ndarray  # int64 seconds
    i: np.ndarray  # int64 dense index
    j: np.ndarray  # int64 dense index
    person_ids: np.ndarray  # raw id of each dense index

    @property
    def n_people(self) -> int:
        return int(self.person_ids.size)


def load_contacts(path: str | Path = DEFAULT_PATH) -> Contacts:
    # The first three columns: some files of this kind add the two people's classes (t i j Ci Cj).
    raw = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2), ndmin=2)
    ids, inv = np.unique(raw[:, 1:], return_inverse=True)
    inv = inv.reshape(-1, 2)
    return Contacts(t=raw[:, 0].copy(), i=inv[:, 0].copy(), j=inv[:, 1].copy(), person_ids=ids)


def subset(c: Contacts, mask: np.ndarray) -> Contacts:
    return Contacts(t=c.t[mask], i=c.i[mask], j=c.j[mask], person_ids=c.person_ids)


def day_index(t: np.ndarray) -> np.ndarray:
    """The day of each row: a day ends at a quiet gap of ``NIGHT_GAP_S`` or more between contacts.

    WHY not ``t // 86400``: that needs ``t`` counted from a midnight, as in SFHH09 (where both give
    the same split), but most files of this kind count from the epoch (the day boundary then falls
    wherever the epoch puts it, and "day 0" is empty) or from the start of recording. Data without
    any such gap (a ward that never sleeps) is cut in 24-hour windows from its first row."""
    t = np.asarray(t, dtype=np.int64)
    if not t.size:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    nights = np.diff(t[order]) >= NIGHT_GAP_S
    if not nights.any():
        return (t - t.min()) // DAY_S
    day = np.empty(t.size, dtype=np.int64)
    day[order] = np.concatenate([[0], np.cumsum(nights)])
    return day


def split_days(c: Contacts) -> tuple[Contacts, Contacts]:
    """(day 0, day 1): the history and the future of the protocol."""
    day = day_index(c.t)
    return subset(c, day == 0), subset(c, day == 1)


def pair_durations(c: Contacts) -> dict[tuple[int, int], int]:
    """Cumulative contact seconds per unordered pair (20 s per row)."""
    lo = np.minimum(c.i, c.j)
    hi = np.maximum(c.i, c.j)
    key = lo * c.n_people + hi
    u, cnt = np.unique(key, return_counts=True)
    n = c.n_people
    return {(int(k // n), int(k % n)): int(v) * TICK_S for k, v in zip(u, cnt, strict=True)}


def partner_sets(durations: dict[tuple[int, int], int], n: int, min_seconds: int = 0) -> list[set[int]]:
    out: list[set[int]] = [set() for _ in range(n)]
    for (a, b), s in durations.items():
        if s >= min_seconds:
            out[a].add(b)
            out[b].add(a)
    return out


# --------------------------------------------------------------------------- sessions
@dataclass(frozen=True)
class Sessions:
    """Interactions (attendee x session) built from contacts; arrays aligned."""

    attendee: np.ndarray  # int64
    session: np.ndarray  # int64, 0..n_sessions-1 in time order
    start: np.ndarray  # first tick ts (s)
    end: np.ndarray  # last tick ts (s)
    dwell: np.ndarray  # 20 s x ticks
    n_sessions: int
    session_size: np.ndarray  # attendees per session


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def build_sessions(c: Contacts, window_s: int = 60) -> Sessions:
    """Connected components of the contact graph inside each ``window_s`` window.

    Sessions are numbered by (window, smallest member index) so numbering is deterministic.
    """
    win = c.t // window_s
    order = np.argsort(win, kind="stable")
    w_sorted = win[order]
    bounds = np.flatnonzero(np.diff(w_sorted)) + 1
    groups = np.split(order, bounds)
    att: list[int] = []
    ses: list[int] = []
    st: list[int] = []
    en: list[int] = []
    dw: list[int] = []
    sizes: list[int] = []
    sid = 0
    for g in groups:
        parent: dict[int, int] = {}
        ticks: dict[int, set[int]] = {}
        for r in g.tolist():
            a, b, t = int(c.i[r]), int(c.j[r]), int(c.t[r])
            for x in (a, b):
                if x not in parent:
                    parent[x] = x
                    ticks[x] = set()
                ticks[x].add(t)
            ra, rb = _find(parent, a), _find(parent, b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        comps: dict[int, list[int]] = {}
        for x in parent:
            comps.setdefault(_find(parent, x), []).append(x)
        for root in sorted(comps):
            members = sorted(comps[root])
            sizes.append(len(members))
            for x in members:
                tk = ticks[x]
                att.append(x)
                ses.append(sid)
                st.append(min(tk))
                en.append(max(tk))
                dw.append(TICK_S * len(tk))
            sid += 1
    return Sessions(
        attendee=np.asarray(att, dtype=np.int64),
        session=np.asarray(ses, dtype=np.int64),
        start=np.asarray(st, dtype=np.int64),
        end=np.asarray(en, dtype=np.int64),
        dwell=np.asarray(dw, dtype=np.float64),
        n_sessions=sid,
        session_size=np.asarray(sizes, dtype=np.int64),
    )


# --------------------------------------------------------------------------- protocol
@dataclass(frozen=True)
class Task:
    """One history/future split, ready for scoring."""

    n: int
    history: Contacts
    sessions: Sessions
    hist_dur: dict[tuple[int, int], int]
    met: list[set[int]]  # day-0 (history) partners
    targets_all: list[int]
    truth_all: list[set[int]]  # aligned with targets_all
    targets_new: list[int]
    truth_new: list[set[int]]


def make_task(history: Contacts, future: Contacts, min_future_s: int = 60, window_s: int = 60) -> Task:
    n = history.n_people
    hist_dur = pair_durations(history)
    met = partner_sets(hist_dur, n)
    fut = partner_sets(pair_durations(future), n, min_seconds=min_future_s)
    t_all, tr_all, t_new, tr_new = [], [], [], []
    for a in range(n):
        if not met[a] or not fut[a]:
            continue
        t_all.append(a)
        tr_all.append(fut[a])
        new = fut[a] - met[a]
        if new:
            t_new.append(a)
            tr_new.append(new)
    return Task(n, history, build_sessions(history, window_s), hist_dur, met, t_all, tr_all, t_new, tr_new)


def protocol_task(path: str | Path = DEFAULT_PATH) -> Task:
    """The README protocol: history = day 0, future = day 1."""
    h, f = split_days(load_contacts(path))
    return make_task(h, f)


def internal_task(path: str | Path = DEFAULT_PATH, frac: float = 0.5) -> Task:
    """Tuning split that never looks at day 1: day 0 rows before the ``frac`` time quantile
    of day 0 are history, the remaining day-0 rows are the "future"."""
    h, _ = split_days(load_contacts(path))
    cut = np.quantile(h.t, frac)
    return make_task(subset(h, h.t < cut), subset(h, h.t >= cut))


def session_inputs(task: Task) -> InteractionArrays:
    """The history's sessions as the engine's inputs (dense person indices = attendee indices): the
    rows `manage.py evaluate_contacts` and the contract harness import, without the database."""
    s = task.sessions
    return InteractionArrays(s.attendee, s.session, s.dwell, task.n, s.n_sessions, s.start - TICK_S, s.end)


# A scorer maps (task) -> function(target) -> score vector over all n people (higher = better).
# Ties are broken by the lower person index (stable sort on -score), deterministic.
Scorer = Callable[[int], np.ndarray]


def only_known(task: Task, scorer: Scorer) -> Scorer:
    """``scorer`` naming only the people active in the history: what any list of a product fed the
    history can hold (someone first seen in the future does not exist in it)."""
    known = np.array([bool(m) for m in task.met])

    def f(a: int) -> np.ndarray:
        return np.where(known, scorer(a), -np.inf)

    return f


def lists_scorer(task: Task, lists: dict[int, list[int]]) -> Scorer:
    """Ranked lists (person index -> indices, best first) as the protocol's scorer: listed people
    score by rank, everyone else -inf (a list names only whom it names)."""

    def scorer(a: int) -> np.ndarray:
        s = np.full(task.n, -np.inf)
        items = lists.get(a, [])
        for rank, b in enumerate(items):
            s[b] = float(len(items) - rank)
        return s

    return scorer


def top_k(scores: np.ndarray, k: int, exclude: set[int]) -> list[int]:
    s = scores.astype(np.float64, copy=True)
    if exclude:
        s[list(exclude)] = -np.inf
    order = np.argsort(-s, kind="stable")
    out = [int(x) for x in order[:k] if np.isfinite(s[x])]
    return out


@dataclass
class Metrics:
    recall: float
    precision: float
    hit: float
    n: int


def per_target(task: Task, scorer: Scorer, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per evaluated attendee (rows, aligned with ``targets_all`` / ``targets_new``): columns
    recall, precision, hit at ``k``; returns (all, new-only)."""
    res = []
    for targets, truths, new_only in (
        (task.targets_all, task.truth_all, False),
        (task.targets_new, task.truth_new, True),
    ):
        rows = np.zeros((len(targets), 3))
        for row, (a, truth) in enumerate(zip(targets, truths, strict=True)):
            excl = {a} | (task.met[a] if new_only else set())
            rec = top_k(scorer(a), k, excl)
            hits = len(truth.intersection(rec))
            rows[row] = (hits / len(truth), hits / k, 1.0 if hits else 0.0)
        res.append(rows)
    return res[0], res[1]


def _metrics(rows: np.ndarray) -> Metrics:
    if not rows.shape[0]:
        return Metrics(0.0, 0.0, 0.0, 0)
    r, p, h = rows.mean(axis=0)
    return Metrics(float(r), float(p), float(h), int(rows.shape[0]))


def evaluate(task: Task, scorer: Scorer, k: int = 10) -> tuple[Metrics, Metrics]:
    """Return (all, new-only) metrics for a scorer."""
    all_rows, new_rows = per_target(task, scorer, k)
    return _metrics(all_rows), _metrics(new_rows)


@dataclass(frozen=True)
class Difference:
    """Mean of (ours - baseline) over the evaluated attendees, with a 95 % paired bootstrap
    interval. ``lo > 0``: better beyond the resampling noise of this set of attendees."""

    mean: float
    lo: float
    hi: float

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.lo:+.3f}, {self.hi:+.3f}]"


def paired_difference(ours: np.ndarray, base: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Difference:
    """Paired bootstrap over attendees of the per-attendee difference (one metric column).

    WHY paired: both methods are scored on the same attendees, so resampling attendees keeps each
    one's two scores together; the interval then reflects which attendees happen to be in the set,
    the noise a second event of the same kind would bring. Deterministic (fixed seed)."""
    d = np.asarray(ours, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    if not d.size:
        return Difference(0.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Difference(float(d.mean()), float(lo), float(hi))


def versus_baselines(task: Task, scorer: Scorer, k: int = 10) -> dict[str, Difference]:
    """The four goals of the README as paired differences: "all" recall and precision against
    repeat + popularity, "new-only" recall and precision against popularity."""
    ours_all, ours_new = per_target(task, scorer, k)
    rp_all, _ = per_target(task, baseline_repeat_popularity(task), k)
    _, pop_new = per_target(task, baseline_popularity(task), k)
    return {
        "all R@10 vs repeat+popularity": paired_difference(ours_all[:, 0], rp_all[:, 0]),
        "all P@10 vs repeat+popularity": paired_difference(ours_all[:, 1], rp_all[:, 1]),
        "new R@10 vs popularity": paired_difference(ours_new[:, 0], pop_new[:, 0]),
        "new P@10 vs popularity": paired_difference(ours_new[:, 1], pop_new[:, 1]),
    }


# --------------------------------------------------------------------------- baselines
def history_degree(task: Task) -> np.ndarray:
    return np.array([len(s) for s in task.met], dtype=np.float64)


def baseline_random(task: Task, seed: int) -> Scorer:
    rng = np.random.default_rng(seed)
    cache: dict[int, np.ndarray] = {}

    def f(a: int) -> np.ndarray:
        if a not in cache:
            cache[a] = rng.random(task.n)
        return cache[a]

    return f


def baseline_popularity(task: Task) -> Scorer:
    deg = history_degree(task)
    return lambda a: deg


def baseline_repeat_popularity(task: Task) -> Scorer:
    deg = history_degree(task)
    rep = np.zeros((task.n, task.n))
    for (a, b), s in task.hist_dur.items():
        rep[a, b] = rep[b, a] = s
    scale = deg.max() + 1.0
    # repeat duration dominates; popularity only pads (breaks ties among unmet people)
    return lambda a: rep[a] * scale + deg


def baseline_itemknn(task: Task) -> Scorer:
    s = task.sessions
    x = np.zeros((task.n, s.n_sessions))
    np.add.at(x, (s.attendee, s.session), s.dwell)
    norm = np.linalg.norm(x, axis=1)
    norm[norm == 0] = 1.0
    xn = x / norm[:, None]
    sim = xn @ xn.T
    deg = history_degree(task) * 1e-9  # padded by popularity (matches the README's figures)
    return lambda a: sim[a] + deg


def baseline_adamic_adar(task: Task) -> Scorer:
    deg = history_degree(task)
    w = np.zeros(task.n)
    ok = deg > 1
    w[ok] = 1.0 / np.log(deg[ok])
    adj = np.zeros((task.n, task.n))
    for a, b in task.hist_dur:
        adj[a, b] = adj[b, a] = 1.0
    aa = (adj * w[None, :]) @ adj
    pad = deg * 1e-9  # padded by popularity, like the other baselines
    return lambda a: aa[a] + pad


def run_baselines(task: Task, k: int = 10, seeds: int = 5) -> dict[str, tuple[Metrics, Metrics]]:
    out: dict[str, tuple[Metrics, Metrics]] = {}
    ra = [evaluate(task, baseline_random(task, s), k) for s in range(seeds)]
    out[f"random ({seeds} seeds)"] = tuple(  # type: ignore[assignment]
        Metrics(
            float(np.mean([x[i].recall for x in ra])),
            float(np.mean([x[i].precision for x in ra])),
            float(np.mean([x[i].hit for x in ra])),
            ra[0][i].n,
        )
        for i in range(2)
    )
    out["popularity"] = evaluate(task, baseline_popularity(task), k)
    out["repeat + popularity"] = evaluate(task, baseline_repeat_popularity(task), k)
    out["co-session item-kNN (cosine, dwell)"] = evaluate(task, baseline_itemknn(task), k)
    out["Adamic-Adar on history graph"] = evaluate(task, baseline_adamic_adar(task), k)
    return out


def session_stats(s: Sessions) -> dict[str, float]:
    return {
        "n_sessions": float(s.n_sessions),
        "median_size": float(np.median(s.session_size)) if s.n_sessions else math.nan,
        "p90_size": float(np.percentile(s.session_size, 90)) if s.n_sessions else math.nan,
        "max_size": float(s.session_size.max()) if s.n_sessions else math.nan,
    }
