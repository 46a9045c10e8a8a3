"""fit / Model: the local "people to meet" recommender (pure numpy + numba, no Django).

Two stages, both row-wise so any subset of rows can be recomputed (real-time updates):

1. co-presence (``direct``): for every attendee the ``candidate_pool`` strongest partners over
   contexts no larger than the cap, with idf (popularity discount), dwell, recency and a
   same-time-overlap bonus.  This is where the arithmetic goes (compiled kernel).
2. final score: linear combination of direct (row-normalised), a 2-hop random walk over the
   stage-1 lists (people met by the people you met) and sociability ``log1p(degree)``.
   Stored as the ``top_k`` neighbour table.

Frozen between refits (WHY: keeping them fixed makes an update touch only a bounded set of
rows; they drift slowly and a nightly/hourly refit resets them):

* the context-size **cap** (absolute number, derived from the percentile at fit time);
* the **recency reference time** ``t_ref`` (recency weights are relative to it);
* rows that are *not* recomputed: their two-hop term and the sociability of their candidates
  may be stale until the next refit.  Everything a recomputed row depends on (idf of every
  context, values, stage-1 lists of its partners, degrees, the sociability fill list) is
  current, so recomputed rows equal a full refit with the same ``t_ref`` and cap.

idf is *not* frozen: an update changes the size of the touched contexts, and all their
members (at most ``cap + 1`` of them) get new stage-1 rows, which keeps idf exact.  Only the
attendees who moved are recomputed in full; every other member changes only in its pairs with
members of that context, so ``_kernels.member_rows`` re-scores just those pairs from its stored
list and proves the new list exact with a guard (the best partner left outside the list), or
flags the row for a full recompute.  Stage 1 and the degrees of *every* row stay equal to a
full refit (tested after each of hundreds of single updates).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numba
import numpy as np

from recommendations.engine import _kernels as K
from recommendations.engine.types import EngineConfig, Explanation, InteractionArrays

_EMPTY_I = np.empty(0, dtype=np.int64)
#: config fields weighting the columns of :meth:`Model.features`
FEATURE_WEIGHTS = ("w_direct", "w_two_hop", "w_repeat", "w_social", "w_activity")


class _Blocks:
    """Mutable blocked-CSR adjacency: group g -> sorted ``other`` ids plus payload arrays.

    WHY not scipy CSR: inserting one interaction into a CSR matrix is O(nnz); here a block is
    relocated to the end of the buffer (capacity doubling), which is amortised O(block size).
    """

    def __init__(self, n_groups: int, capacity: int) -> None:
        self.ptr = np.zeros(n_groups, dtype=np.int64)
        self.length = np.zeros(n_groups, dtype=np.int64)
        self.cap = np.zeros(n_groups, dtype=np.int64)
        self.idx = np.zeros(capacity, dtype=np.int64)
        self.w = np.zeros(capacity, dtype=np.float64)
        self.s = np.zeros(capacity, dtype=np.float64)
        self.e = np.zeros(capacity, dtype=np.float64)
        self.v = np.zeros(capacity, dtype=np.float64)
        self.used = 0

    @staticmethod
    def build(
        group: np.ndarray, other: np.ndarray, w: np.ndarray, s: np.ndarray, e: np.ndarray, v: np.ndarray, n_groups: int
    ) -> _Blocks:
        # one int64 key sort (faster than lexsort); already-sorted input skips the gather
        key = group.astype(np.int64) * (int(other.max()) + 1 if other.size else 1) + other
        already_sorted = key.size and np.all(key[1:] > key[:-1])
        order = np.arange(key.shape[0]) if already_sorted else np.argsort(key, kind="stable")
        m = order.shape[0]
        b = _Blocks(n_groups, m)
        counts = np.bincount(group, minlength=n_groups).astype(np.int64)
        b.length[:] = counts
        b.cap[:] = counts
        b.ptr[1:] = np.cumsum(counts)[:-1] if n_groups > 1 else b.ptr[1:]
        b.idx[:] = other[order]
        b.w[:] = w[order]
        b.s[:] = s[order]
        b.e[:] = e[order]
        b.v[:] = v[order]
        b.used = m
        return b

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ptr, length, idx, v, s, e): the block as the kernels take it, in their parameter order."""
        return self.ptr, self.length, self.idx, self.v, self.s, self.e

    def members(self, g: int) -> np.ndarray:
        p = self.ptr[g]
        return self.idx[p : p + self.length[g]]

    def grow_groups(self, n: int) -> None:
        extra = n - self.ptr.shape[0]
        if extra > 0:
            self.ptr = np.concatenate([self.ptr, np.full(extra, self.used, dtype=np.int64)])
            self.length = np.concatenate([self.length, np.zeros(extra, dtype=np.int64)])
            self.cap = np.concatenate([self.cap, np.zeros(extra, dtype=np.int64)])

    def _ensure(self, need: int) -> None:
        if need <= self.idx.shape[0]:
            return
        new = max(need, 2 * self.idx.shape[0], 16)
        for name in ("idx", "w", "s", "e", "v"):
            old = getattr(self, name)
            arr = np.zeros(new, dtype=old.dtype)
            arr[: self.used] = old[: self.used]
            setattr(self, name, arr)

    def find(self, g: int, o: int) -> int:
        """Absolute position of ``o`` in block g, or -1."""
        p, n = int(self.ptr[g]), int(self.length[g])
        j = int(np.searchsorted(self.idx[p : p + n], o))
        if j < n and self.idx[p + j] == o:
            return p + j
        return -1

    def insert(self, g: int, o: int, w: float, s: float, e: float, v: float) -> int:
        """Insert (o, payload) keeping the block sorted; returns its absolute position."""
        p, n, c = int(self.ptr[g]), int(self.length[g]), int(self.cap[g])
        if n == c:  # relocate block to the end with doubled capacity
            newc = max(4, 2 * c)
            self._ensure(self.used + newc)
            q = self.used
            for name in ("idx", "w", "s", "e", "v"):
                arr = getattr(self, name)
                arr[q : q + n] = arr[p : p + n]
            self.ptr[g] = p = q
            self.cap[g] = newc
            self.used += newc
        j = int(np.searchsorted(self.idx[p : p + n], o))
        for name in ("idx", "w", "s", "e", "v"):
            arr = getattr(self, name)
            arr[p + j + 1 : p + n + 1] = arr[p + j : p + n].copy()
        self.idx[p + j], self.w[p + j], self.s[p + j], self.e[p + j], self.v[p + j] = o, w, s, e, v
        self.length[g] = n + 1
        return p + j

    def compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, idx, w, s, e) as plain CSR."""
        n = self.ptr.shape[0]
        indptr = np.zeros(n + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(self.length)
        tot = int(indptr[-1])
        sel = np.repeat(self.ptr - indptr[:-1], self.length) + np.arange(tot, dtype=np.int64)
        return indptr, self.idx[sel], self.w[sel], self.s[sel], self.e[sel]


def _values(w: np.ndarray, e: np.ndarray, cfg: EngineConfig, t_ref: float) -> np.ndarray:
    x = np.asarray(w, dtype=np.float64) / cfg.dwell_scale
    # "sqrt": v_a * v_b = sqrt(w_a * w_b) / scale, i.e. linear in a shared dwell;
    # "log": saturating, a very long stay counts little more than a long one.
    v = np.sqrt(x) if cfg.value_transform == "sqrt" else np.log1p(x)
    if cfg.recency_half_life:
        v = v * np.power(0.5, (t_ref - np.asarray(e, dtype=np.float64)) / cfg.recency_half_life)
    return v


def _idf(sizes: np.ndarray, cap: int, alpha: float) -> np.ndarray:
    out = np.zeros(sizes.shape[0], dtype=np.float64)
    ok = (sizes >= 2) & (sizes <= cap)
    out[ok] = np.power(sizes[ok] - 1.0, -alpha)
    return out


def _pop_order(prior: np.ndarray, p: int) -> np.ndarray:
    """The ``p`` attendees with the highest prior (``Model.prior``: sociability and activity, as
    weighted), by prior desc then index asc (deterministic): the fill list of stage 2."""
    n = prior.shape[0]
    if p >= n:
        return np.lexsort((np.arange(n), -prior)).astype(np.int64)
    thr = np.partition(prior, n - p)[n - p]
    sel = np.flatnonzero(prior >= thr)
    sel = sel[np.lexsort((sel, -prior[sel]))][:p]
    return sel.astype(np.int64)


def _leading(row: np.ndarray) -> int:
    """Number of filled entries of a stored list (filled first, then -1)."""
    filled = row >= 0
    return int(filled.size if filled.all() else np.argmin(filled))


class _Via:
    """Two-hop paths of one row, looked up per candidate: ``get_many(bs)[b]`` = [(partner, part),
    ...] (only the explained pairs pay for the lookup)."""

    __slots__ = ("b", "c", "m")

    def __init__(self, b: np.ndarray, m: np.ndarray, c: np.ndarray) -> None:
        self.b, self.m, self.c = b, m, c

    def get_many(self, bs: list[int]) -> dict[int, list[tuple[int, float]]]:
        """The paths to each of ``bs`` that has any, strongest first (ties in the order they were
        added). In numpy: a busy row's candidates have dozens of paths each."""
        hit = np.flatnonzero(np.isin(self.b, bs))
        hit = hit[np.lexsort((-self.c[hit], self.b[hit]))]  # by candidate, then weight desc; stable
        keys, first = np.unique(self.b[hit], return_index=True)
        m, c = self.m[hit].tolist(), self.c[hit].tolist()
        bounds = [*first.tolist(), hit.size]
        return {
            b: list(zip(m[lo:hi], c[lo:hi], strict=True))
            for b, lo, hi in zip(keys.tolist(), bounds[:-1], bounds[1:], strict=True)
        }


class Model:
    """Fitted recommender state.  Build with :func:`fit` or :meth:`Model.load`."""

    # From this many rows to recompute, an update takes the fit's parallel kernels for every row
    # instead of the single-threaded incremental path (see `update`).
    BULK_ROWS = 4096

    def __init__(
        self, cfg: EngineConfig, n_att: int, n_ctx: int, A: _Blocks, C: _Blocks, t_ref: float, cap: int
    ) -> None:
        self.config = cfg
        self.n_attendees = n_att
        self.n_contexts = n_ctx
        self.A = A  # attendee -> contexts
        self.C = C  # context -> attendees
        self.t_ref = t_ref
        self.cap = cap
        self.idf = _idf(C.length.astype(np.float64), cap, cfg.popularity_discount)
        k1 = cfg.candidate_pool
        self.n1_i = np.full((n_att, k1), -1, dtype=np.int64)
        self.n1_s = np.zeros((n_att, k1), dtype=np.float64)
        self.n1_c = np.zeros((n_att, k1), dtype=np.int32)
        # the best partner outside each stored list (see ``_kernels.member_rows``)
        self.guard_s = np.zeros(n_att, dtype=np.float64)
        self.guard_i = np.full(n_att, K.GUARD_UNKNOWN, dtype=np.int64)
        self.deg = np.zeros(n_att, dtype=np.int64)
        self.tab_i = np.full((n_att, cfg.top_k), -1, dtype=np.int64)
        self.tab_s = np.full((n_att, cfg.top_k), -np.inf, dtype=np.float64)
        self.social = np.zeros(n_att, dtype=np.float64)  # log1p(deg)
        self.activity = np.zeros(n_att, dtype=np.float64)  # see `_refresh_prior`
        # What a candidate scores before any pair evidence: w_social * social + w_activity * activity.
        self.prior = np.zeros(n_att, dtype=np.float64)
        self.pop = _EMPTY_I
        self.last_update: dict[str, int] = {}  # rows of the last update: full / incremental / fallback

    # ------------------------------------------------------------------ computation
    @property
    def _pop_len(self) -> int:
        f = min(self.config.two_hop_fanout, self.config.candidate_pool)
        return self.config.top_k + self.config.candidate_pool + f * f + 1

    def _scratch(self) -> tuple[np.ndarray, ...]:
        """Per-thread n-sized work buffers, kept zeroed by the kernels and reused."""
        t = max(1, numba.get_num_threads())
        n = self.n_attendees
        sc = getattr(self, "_sc", None)
        if sc is None or sc[0].shape != (t, n):
            sc = (
                np.zeros((t, n)),
                np.zeros((t, n), dtype=np.int32),
                np.zeros((t, n), dtype=np.int64),
                np.zeros((t, n)),
                np.zeros((t, n)),
                np.zeros((t, n)),
                np.zeros((t, n), dtype=np.int8),
            )
            self._sc = sc
        return sc

    def _stage1(self, rows: np.ndarray, serial: bool = False) -> None:
        cfg = self.config
        m = rows.shape[0]
        k1 = cfg.candidate_pool
        # one more than the pool: the (k1 + 1)-th partner is the row's guard
        oi = np.empty((m, k1 + 1), dtype=np.int64)
        os_ = np.empty((m, k1 + 1), dtype=np.float64)
        oc = np.empty((m, k1 + 1), dtype=np.int32)
        od = np.empty(m, dtype=np.int64)
        A, C = self.A, self.C
        sc = self._scratch()
        if serial:
            sc = tuple(x[:1] for x in sc)
        (K.stage1_serial if serial else K.stage1)(
            rows,
            A.arrays(),
            C.arrays(),
            self.idf,
            float(cfg.same_time_bonus),
            int(cfg.min_co_count),
            k1 + 1,
            (sc[0], sc[1], sc[2]),
            (oi, os_, oc, od),
        )
        self.n1_i[rows] = oi[:, :k1]
        self.n1_s[rows] = os_[:, :k1]
        self.n1_c[rows] = oc[:, :k1]
        self.guard_i[rows] = np.where(oi[:, k1] >= 0, oi[:, k1], K.GUARD_NONE)
        self.guard_s[rows] = np.where(oi[:, k1] >= 0, os_[:, k1], 0.0)
        self.deg[rows] = od
        self._refresh_prior(rows)

    def _refresh_prior(self, rows: np.ndarray) -> None:
        """Sociability (log1p of distinct partners), activity and their weighted sum for ``rows``.

        activity = log1p(sum over the attendee's contexts within the cap of dwell / dwell_scale *
        ln(context size)): time spent among people, more for larger groups, saturating. WHY beside
        the degree: in a dense event everyone has been near everyone (degree says nothing), but the
        people who spend their time in company are still the ones most likely met tomorrow."""
        cfg = self.config
        self.social[rows] = np.log1p(self.deg[rows].astype(np.float64))
        out = np.empty(rows.shape[0], dtype=np.float64)
        K.activity(rows, self.A.ptr, self.A.length, self.A.idx, self.A.w, self.idf, self.C.length, cfg.dwell_scale, out)
        self.activity[rows] = out
        self.prior[rows] = cfg.w_social * self.social[rows] + cfg.w_activity * out

    def _stage2(self, rows: np.ndarray, serial: bool = False) -> None:
        cfg = self.config
        m = rows.shape[0]
        oi = np.empty((m, cfg.top_k), dtype=np.int64)
        os_ = np.empty((m, cfg.top_k), dtype=np.float64)
        sc = self._scratch()
        if serial:
            sc = tuple(x[:1] for x in sc)
        weights = (
            float(cfg.w_direct),
            float(cfg.w_two_hop),
            float(cfg.w_repeat),
            1.0,  # the prior is already weighted
            cfg.direct_transform == "log",
        )
        (K.stage2_serial if serial else K.stage2)(
            rows,
            (self.n1_i, self.n1_s, self.n1_c),
            int(cfg.two_hop_fanout),
            self.pop,
            self.prior,
            weights,
            cfg.top_k,
            (sc[3], sc[4], sc[5], sc[6], sc[2]),
            (oi, os_),
        )
        self.tab_i[rows] = oi
        self.tab_s[rows] = os_

    def _compute(self, rows: np.ndarray) -> None:
        """Both stages for ``rows`` with the parallel kernels (a fit; updates go through `update`)."""
        self._stage1(rows)
        self.pop = _pop_order(self.prior, self._pop_len)
        self._stage2(rows)

    def _members(self, rows: np.ndarray, ctx: list[int], changes: dict[int, dict[int, bool]]) -> np.ndarray:
        """Incremental stage 1 for members of the touched contexts ``ctx`` (``_kernels.member_rows``);
        returns the rows it could not prove exact, which the caller recomputes in full."""
        cfg = self.config
        ptr = np.zeros(len(ctx) + 1, dtype=np.int64)
        idx: list[int] = []
        new: list[int] = []
        for t, c in enumerate(ctx):
            for a, is_new in sorted(changes[c].items()):
                idx.append(a)
                new.append(1 if is_new else 0)
            ptr[t + 1] = len(idx)
        fallback = np.zeros(rows.shape[0], dtype=np.int8)
        A, C = self.A, self.C
        change = (np.asarray(ctx, dtype=np.int64), ptr, np.asarray(idx, dtype=np.int64), np.asarray(new, dtype=np.int8))
        K.member_rows(
            rows,
            change,
            A.arrays(),
            C.arrays()[:3],  # ptr, length, idx: the values come from A
            self.idf,
            float(cfg.same_time_bonus),
            int(cfg.min_co_count),
            (self.n1_i, self.n1_s, self.n1_c),
            (self.guard_s, self.guard_i),
            self.deg,
            fallback,
        )
        self._refresh_prior(rows)
        return rows[fallback == 1]

    def _pop_may_change(self, rows: np.ndarray, old: np.ndarray | None) -> bool:
        """The fill list (top-P by prior desc, index asc) can only change if a changed row was
        in it or now ranks above its last element (WHY: skip an O(n) partition per update)."""
        p = self.pop
        if old is None or p.shape[0] < self._pop_len or p.shape[0] == 0:
            return True
        changed = rows[self.prior[rows] != old]
        if changed.size == 0:
            return False
        if np.isin(changed, p).any():
            return True
        last = int(p[-1])
        dl = self.prior[last]
        dc = self.prior[changed]
        return bool(np.any((dc > dl) | ((dc == dl) & (changed < last))))

    # ------------------------------------------------------------------ queries
    def neighbours(
        self, a: int, k: int | None = None, exclude: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (indices, scores) for attendee ``a``, best first, ties by lower index.

        Served from the stored table when possible; with ``exclude`` (e.g. people already met)
        or ``k > top_k`` the row is scored on the fly (same arithmetic, one row).
        """
        k = self.config.top_k if k is None else k
        if exclude is None and k <= self.config.top_k:
            ok = self.tab_i[a, :k] >= 0
            return self.tab_i[a, :k][ok], self.tab_s[a, :k][ok]
        s = self.score_row(a)
        s[a] = -np.inf
        if exclude is not None and len(exclude):
            s[np.asarray(exclude, dtype=np.int64)] = -np.inf
        order = np.argsort(-s, kind="stable")[:k]
        order = order[np.isfinite(s[order])]
        return order, s[order]

    def row_features(self, a: int) -> tuple[dict[int, float], dict[int, float], _Via, dict[int, float]]:
        """Stage-2 features of row ``a`` (same arithmetic, in the same order, as the kernel); pass
        them to :meth:`explain` when several of its pairs are explained.

        Returns ``direct`` and ``rep`` (per stage-1 partner), ``two`` (per two-hop candidate) and
        ``via`` (per two-hop candidate, the partners it is reached through).  Vectorised: the
        real-time path explains thousands of rows when a worker catches up, and the loop over
        up to ``two_hop_fanout ** 2`` entries in Python cost ~0.3 ms a row."""
        cfg = self.config
        k1 = cfg.candidate_pool
        f = min(cfg.two_hop_fanout, k1)
        row = self.n1_i[a]
        nv = _leading(row)
        keys = row[:nv].tolist()
        direct = dict(zip(keys, self.n1_s[a, :nv].tolist(), strict=True))
        rep = {b: math.log1p(c) for b, c in zip(keys, self.n1_c[a, :nv].tolist(), strict=True)}
        two: dict[int, float] = {}
        via = _Via(_EMPTY_I, _EMPTY_I, np.empty(0))
        nf = min(nv, f)
        tot_a = 0.0
        for x in self.n1_s[a, :nf].tolist():  # sequential, as the kernel adds
            tot_a += x
        if tot_a > 0.0 and nf:
            ms = row[:nf]
            theirs = self.n1_i[ms, :f]  # the partners' own lists
            valid = np.logical_and.accumulate(theirs >= 0, axis=1)
            strength = np.where(valid, self.n1_s[ms, :f], 0.0)
            tot_m = np.cumsum(strength, axis=1)[:, -1]  # sequential per row (the zeros change nothing)
            pam = self.n1_s[a, :nf] / tot_a
            with np.errstate(divide="ignore", invalid="ignore"):
                parts = pam[:, None] * (strength / tot_m[:, None])
            keep = valid & (theirs != a) & (tot_m > 0.0)[:, None]
            bs, cs = theirs[keep], parts[keep]  # row-major: the kernel's (partner, their partner) order
            if bs.size:
                uniq, inv = np.unique(bs, return_inverse=True)
                sums = np.bincount(inv, weights=cs)  # adds each candidate's parts in input order
                two = dict(zip(uniq.tolist(), sums.tolist(), strict=True))
                via = _Via(bs, np.broadcast_to(ms[:, None], theirs.shape)[keep], cs)
        return direct, two, via, rep

    def company_seconds(self, rows: np.ndarray) -> np.ndarray:
        """Each row's weight (dwell seconds) in contexts that count (within the cap, with at least
        one other member): the minutes behind its activity, for the reasons."""
        out = np.zeros(rows.shape[0])
        for j, a in enumerate(rows.tolist()):
            p, n = int(self.A.ptr[a]), int(self.A.length[a])
            ctx = self.A.idx[p : p + n]
            out[j] = float(self.A.w[p : p + n][self.idf[ctx] > 0.0].sum())
        return out

    def _x1(self, d: float, dmax: float) -> float:
        if dmax <= 0.0:
            return 0.0
        if self.config.direct_transform == "log":
            return math.log1p(d) / math.log1p(dmax)
        return d / dmax

    def score_row(self, a: int) -> np.ndarray:
        """Final score of every attendee as a candidate for ``a`` (dense, length n)."""
        cfg = self.config
        direct, two, _, rep = self.row_features(a)
        s = self.prior.copy()
        dmax = float(self.n1_s[a, 0]) if self.n1_i[a, 0] >= 0 else 0.0
        tmax = max(two.values(), default=0.0)
        for b in set(direct) | set(two):
            x1 = self._x1(direct.get(b, 0.0), dmax)
            x2 = two.get(b, 0.0) / tmax if tmax > 0.0 else 0.0
            s[b] = cfg.w_direct * x1 + cfg.w_two_hop * x2 + cfg.w_repeat * rep.get(b, 0.0) + self.prior[b]
        return s

    def features(self, a: int, candidates: np.ndarray | None = None) -> np.ndarray:
        """Unweighted stage-2 features of every candidate for ``a`` (or of ``candidates``): (n, 5) =
        [direct / max_row, two_hop / max_row, log1p(shared contexts), log1p(degree), activity], in
        the order of :data:`FEATURE_WEIGHTS`.  For learning the weights."""
        if candidates is not None:
            return self.features(a)[np.asarray(candidates, dtype=np.int64)]
        direct, two, _, rep = self.row_features(a)
        out = np.zeros((self.n_attendees, 5))
        out[:, 3] = self.social
        out[:, 4] = self.activity
        for b, v in rep.items():
            out[b, 2] = v
        dmax = float(self.n1_s[a, 0]) if self.n1_i[a, 0] >= 0 else 0.0
        tmax = max(two.values(), default=0.0)
        for b, v in direct.items():
            out[b, 0] = self._x1(v, dmax)
        for b, v in two.items():
            out[b, 1] = v / tmax if tmax > 0.0 else 0.0
        return out

    def explain(self, a: int, b: int, row_features: tuple | None = None) -> Explanation:
        """Reasons for recommending ``b`` to ``a``: per-feature contributions (sum = score),
        the shared contexts with their contribution to the raw co-presence, and the people
        ``a`` met who also met ``b``.  ``row_features`` (from :meth:`row_features`) saves
        recomputing row ``a``'s features when several of its pairs are explained."""
        return self.explain_row(a, [b], row_features)[0]

    def explain_row(self, a: int, bs: list[int], row_features: tuple | None = None) -> list[Explanation]:
        """:meth:`explain` for several candidates of one attendee: the row's features once, the
        shared contexts of every pair in one kernel call."""
        cfg = self.config
        direct, two, via, rep = row_features if row_features is not None else self.row_features(a)
        dmax = float(self.n1_s[a, 0]) if self.n1_i[a, 0] >= 0 else 0.0
        tmax = max(two.values(), default=0.0)
        A = self.A  # b's entries are read from its own block: A and C hold the same payload
        b_arr = np.asarray(bs, dtype=np.int64)
        off, ctx, con, wa, wb, ov = K.shared_contexts(a, b_arr, A.arrays(), A.w, self.idf, float(cfg.same_time_bonus))
        off, ctx, con = off.tolist(), ctx.tolist(), con.tolist()
        presence = list(zip(wa.tolist(), wb.tolist(), ov.tolist(), strict=True))
        paths = via.get_many(bs)
        social, deg = self.social[b_arr].tolist(), self.deg[b_arr].tolist()
        activity = self.activity[b_arr].tolist()
        company = self.company_seconds(b_arr).tolist()
        w1, w2, w3, w4, w5 = cfg.w_direct, cfg.w_two_hop, cfg.w_repeat, cfg.w_social, cfg.w_activity
        out = []
        for t, b in enumerate(bs):
            x1 = self._x1(direct.get(b, 0.0), dmax)
            x2 = two.get(b, 0.0) / tmax if tmax > 0.0 else 0.0
            x3, x4, x5 = rep.get(b, 0.0), social[t], activity[t]
            lo, hi = off[t], off[t + 1]
            raw = 0.0
            for c in con[lo:hi]:  # context ascending, as stage 1 adds
                raw += c
            # strongest first; ties keep the lower context first (a stable sort of ascending contexts)
            order = sorted(range(lo, hi), key=con.__getitem__, reverse=True) if hi - lo > 1 else range(lo, hi)
            found = paths.get(b)  # strongest first
            out.append(
                Explanation(
                    score=w1 * x1 + w2 * x2 + w3 * x3 + (w4 * x4 + w5 * x5),
                    features={
                        "direct": w1 * x1,
                        "two_hop": w2 * x2,
                        "repeat": w3 * x3,
                        "social": w4 * x4,
                        "activity": w5 * x5,
                    },
                    direct_raw=raw,
                    contexts=[(ctx[j], con[j]) for j in order],
                    via=found or [],
                    degree_b=deg[t],
                    shared_contexts=hi - lo,
                    presence=[presence[j] for j in order],
                    company_seconds=company[t],
                )
            )
        return out

    # ------------------------------------------------------------------ real time
    def update(self, new: InteractionArrays) -> np.ndarray:
        """Add interactions without a refit; returns the recomputed attendee rows.

        Recomputed: the attendees in ``new`` and every member of each touched context whose
        size is (or just was) within the cap; members incrementally where the guard allows
        (``last_update`` counts the rows by path).  Their rows equal a full refit with the same
        ``t_ref`` and cap (see module docstring for what stays frozen elsewhere).
        """
        cfg = self.config
        if new.n_attendees > self.n_attendees:
            self._grow_attendees(new.n_attendees)
        if new.n_contexts > self.n_contexts:
            self.A.grow_groups(self.n_attendees)
            self.C.grow_groups(new.n_contexts)
            self.idf = np.concatenate([self.idf, np.zeros(new.n_contexts - self.n_contexts)])
            self.n_contexts = new.n_contexts
        st, en = new.starts(), new.ends()
        touched_ctx: dict[int, float] = {}  # context -> its idf before this batch
        changes: dict[int, dict[int, bool]] = {}  # context -> {attendee whose presence changed: new there}
        full: set[int] = set()
        for a, c, w, s, e in zip(
            new.attendee.tolist(), new.context.tolist(), new.weight.tolist(), st.tolist(), en.tolist(), strict=True
        ):
            if c not in touched_ctx:
                touched_ctx[c] = float(self.idf[c])
            full.add(a)
            pa = self.A.find(a, c)
            if pa >= 0:
                pc = self.C.find(c, a)
                w2 = float(self.A.w[pa]) + w
                s2 = min(float(self.A.s[pa]), s)
                e2 = max(float(self.A.e[pa]), e)
                v2 = float(_values(np.array([w2]), np.array([e2]), cfg, self.t_ref)[0])
                for blk, p in ((self.A, pa), (self.C, pc)):
                    blk.w[p], blk.s[p], blk.e[p], blk.v[p] = w2, s2, e2, v2
                changes.setdefault(c, {}).setdefault(a, False)
            else:
                v = float(_values(np.array([w]), np.array([e]), cfg, self.t_ref)[0])
                self.A.insert(a, c, w, s, e, v)
                self.C.insert(c, a, w, s, e, v)
                changes.setdefault(c, {})[a] = True
        regular: list[int] = []
        members: set[int] = set()
        for c, old_idf in touched_ctx.items():
            self.idf[c] = _idf(np.array([float(self.C.length[c])]), self.cap, cfg.popularity_discount)[0]
            if old_idf == 0.0 and self.idf[c] == 0.0:
                continue  # above the cap (or still alone in it): no pair counts this context
            if old_idf > 0.0 and self.idf[c] > 0.0 and cfg.popularity_discount >= 0.0:
                regular.append(c)  # the other members' rows change only in their pairs with it
                members.update(self.C.members(c).tolist())
            else:  # it just crossed the cap, or just got its second member: every pair in it changed
                full.update(self.C.members(c).tolist())
        f = np.array(sorted(full), dtype=np.int64)
        inc = np.array(sorted(members - full), dtype=np.int64)
        rows = np.union1d(f, inc)
        old_prior = self.prior[rows].copy()
        if rows.size >= self.BULK_ROWS:
            # WHY: a large batch (a worker catching up on everything since training) touches most
            # rows. The incremental path is built for one interaction's latency: one thread, and a
            # guard that cannot prove many rows of such a batch, which it then recomputes. At size M,
            # 5,000 interactions (49,754 rows) took 12-20 s that way, 2.1 s this way.
            self._stage1(rows)
            self.last_update = {"full": int(rows.size), "incremental": 0, "fallback": 0}
            self.pop = _pop_order(self.prior, self._pop_len)
            self._stage2(rows)
            return rows
        if f.size:
            self._stage1(f, serial=True)
        again = self._members(inc, regular, changes) if inc.size else _EMPTY_I
        if again.size:
            self._stage1(again, serial=True)
        self.last_update = {"full": int(f.size), "incremental": int(inc.size - again.size), "fallback": int(again.size)}
        # The touched contexts changed size, so every member's activity did (members are in rows).
        self._refresh_prior(rows)
        if self._pop_may_change(rows, old_prior):
            self.pop = _pop_order(self.prior, self._pop_len)
        self._stage2(rows, serial=True)
        return rows

    def _grow_attendees(self, n: int) -> None:
        cfg = self.config
        extra = n - self.n_attendees
        self.A.grow_groups(n)
        self.n1_i = np.vstack([self.n1_i, np.full((extra, cfg.candidate_pool), -1, dtype=np.int64)])
        self.n1_s = np.vstack([self.n1_s, np.zeros((extra, cfg.candidate_pool))])
        self.n1_c = np.vstack([self.n1_c, np.zeros((extra, cfg.candidate_pool), dtype=np.int32)])
        self.guard_s = np.concatenate([self.guard_s, np.zeros(extra)])
        self.guard_i = np.concatenate([self.guard_i, np.full(extra, K.GUARD_NONE, dtype=np.int64)])
        self.deg = np.concatenate([self.deg, np.zeros(extra, dtype=np.int64)])
        self.social = np.concatenate([self.social, np.zeros(extra)])
        self.activity = np.concatenate([self.activity, np.zeros(extra)])
        self.prior = np.concatenate([self.prior, np.zeros(extra)])
        self.tab_i = np.vstack([self.tab_i, np.full((extra, cfg.top_k), -1, dtype=np.int64)])
        self.tab_s = np.vstack([self.tab_s, np.full((extra, cfg.top_k), -np.inf)])
        self.n_attendees = n

    # ------------------------------------------------------------------ persistence
    def interactions(self) -> InteractionArrays:
        """All merged interactions currently held (for a refit or an audit)."""
        indptr, idx, w, s, e = self.A.compact()
        att = np.repeat(np.arange(self.n_attendees, dtype=np.int64), np.diff(indptr))
        return InteractionArrays(att, idx, w, self.n_attendees, self.n_contexts, s, e)

    def save(self, path: str | Path) -> None:
        """Store the model version as one ``.npz`` (compressed)."""
        indptr, idx, w, s, e = self.A.compact()
        np.savez_compressed(
            path,
            meta=np.array(
                json.dumps(
                    {
                        "config": self.config.to_dict(),
                        "n_attendees": self.n_attendees,
                        "n_contexts": self.n_contexts,
                        "t_ref": self.t_ref,
                        "cap": self.cap,
                        "format": 2,
                    }
                )
            ),
            indptr=indptr,
            idx=idx,
            w=w,
            s=s,
            e=e,
            n1_i=self.n1_i,
            n1_s=self.n1_s,
            n1_c=self.n1_c,
            guard_s=self.guard_s,
            guard_i=self.guard_i,
            deg=self.deg,
            tab_i=self.tab_i,
            tab_s=self.tab_s,
        )

    @staticmethod
    def load(path: str | Path) -> Model:
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        cfg = EngineConfig.from_dict(meta["config"])
        n_att, n_ctx = int(meta["n_attendees"]), int(meta["n_contexts"])
        indptr = z["indptr"]
        att = np.repeat(np.arange(n_att, dtype=np.int64), np.diff(indptr))
        m = _build(cfg, att, z["idx"], z["w"], z["s"], z["e"], n_att, n_ctx, float(meta["t_ref"]), int(meta["cap"]))
        m.n1_i[:], m.n1_s[:], m.n1_c[:], m.deg[:] = z["n1_i"], z["n1_s"], z["n1_c"], z["deg"]
        m.guard_s[:], m.guard_i[:] = z["guard_s"], z["guard_i"]
        m._refresh_prior(np.arange(n_att, dtype=np.int64))
        m.pop = _pop_order(m.prior, m._pop_len)
        m.tab_i[:], m.tab_s[:] = z["tab_i"], z["tab_s"]
        return m


def _build(
    cfg: EngineConfig,
    att: np.ndarray,
    ctx: np.ndarray,
    w: np.ndarray,
    s: np.ndarray,
    e: np.ndarray,
    n_att: int,
    n_ctx: int,
    t_ref: float,
    cap: int | None,
) -> Model:
    v = _values(w, e, cfg, t_ref)
    A = _Blocks.build(att, ctx, w, s, e, v, n_att)
    C = _Blocks.build(ctx, att, w, s, e, v, n_ctx)
    if cap is None:
        if cfg.context_cap is not None:
            cap = int(cfg.context_cap)
        else:
            sizes = C.length[C.length > 0]
            pct = float(np.percentile(sizes, cfg.context_cap_percentile)) if sizes.size else 0.0
            cap = max(int(cfg.context_cap_min), math.ceil(pct))
    return Model(cfg, n_att, n_ctx, A, C, t_ref, cap)


def merge_duplicates(x: InteractionArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge repeated (attendee, context) rows: weights add, interval = [min start, max end]."""
    key = x.attendee.astype(np.int64) * x.n_contexts + x.context.astype(np.int64)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    first = np.ones(ks.shape[0], dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    starts = np.flatnonzero(first)
    uk = ks[starts]
    w = np.add.reduceat(x.weight.astype(np.float64)[order], starts) if starts.size else np.zeros(0)
    s = np.minimum.reduceat(x.starts()[order], starts) if starts.size else np.zeros(0)
    e = np.maximum.reduceat(x.ends()[order], starts) if starts.size else np.zeros(0)
    return uk // x.n_contexts, uk % x.n_contexts, w, s, e


def fit(inputs: InteractionArrays, config: EngineConfig | None = None, reference_time: float | None = None) -> Model:
    """Build the model and the full ``top_k`` neighbour table for every attendee.

    ``reference_time`` anchors recency decay (default: latest interaction end).
    """
    cfg = config or EngineConfig()
    att, ctx, w, s, e = merge_duplicates(inputs)
    t_ref = float(reference_time) if reference_time is not None else (float(e.max()) if e.size else 0.0)
    m = _build(cfg, att, ctx, w, s, e, inputs.n_attendees, inputs.n_contexts, t_ref, None)
    m._compute(np.arange(inputs.n_attendees, dtype=np.int64))
    return m


def warm_up() -> None:
    """Load every kernel in this process: numba reads most from its disk cache on first use, and
    compiles the single-row ones, which are not cached (about 1.5 s). A fit, an update that takes
    the full and the incremental single-row paths, and an explanation, on a four-person event.
    WHY: a worker otherwise pays it on the first live interaction it handles, or on the first one
    after a catch-up (which takes the parallel kernels); `recommendations.jobs.tasks` calls this when a
    worker process starts."""
    one = np.ones(3)
    m = fit(InteractionArrays(np.arange(3), np.zeros(3, dtype=np.int64), 60 * one, 4, 1, 0 * one, 60 * one))
    m.update(InteractionArrays(np.array([3]), np.array([0]), np.array([60.0]), 4, 1, np.array([0.0]), np.array([60.0])))
    m.explain_row(0, [1, 2])
