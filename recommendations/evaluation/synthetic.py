"""Synthetic event generator shared by the benchmarks (deterministic by seed).

Planted communities of interest, power-law attendee activity and power-law context popularity
(a few huge keynotes).  Each interaction: an attendee drawn by activity; with probability
``p_community`` a context of the attendee's community (skewed inside the community), else a
context drawn from the global Zipf popularity.  Contexts have a start time within a 3-day event
and a 30-90 min duration; an attendee's presence is a sub-interval of it (dwell = weight).

    from recommendations.evaluation.synthetic import make_event, SIZES
    ev = make_event("M", seed=0)   # -> SyntheticEvent with InteractionArrays-like arrays
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# name: (attendees, contexts, interactions)
SIZES: dict[str, tuple[int, int, int]] = {
    "S": (2_000, 200, 20_000),
    "M": (50_000, 5_000, 1_000_000),
    "L": (500_000, 20_000, 10_000_000),
}


@dataclass(frozen=True)
class SyntheticEvent:
    attendee: np.ndarray  # int64
    context: np.ndarray  # int64
    weight: np.ndarray  # float64 dwell seconds
    start: np.ndarray  # float64 epoch seconds
    end: np.ndarray  # float64 epoch seconds
    n_attendees: int
    n_contexts: int
    community: np.ndarray  # community of each attendee (planted truth)


def make_event(
    size: str | tuple[int, int, int],
    seed: int = 0,
    p_community: float = 0.7,
    activity_exponent: float = 0.6,
    popularity_exponent: float = 1.0,
) -> SyntheticEvent:
    n_att, n_ctx, n_int = SIZES[size] if isinstance(size, str) else size
    rng = np.random.default_rng(seed)
    n_comm = max(4, n_ctx // 25)

    # power-law activity: weight of the r-th most active attendee ~ r^-exponent (shuffled ids)
    act = rng.permutation(np.arange(1, n_att + 1, dtype=np.float64) ** -activity_exponent)
    act_cdf = np.cumsum(act)
    act_cdf /= act_cdf[-1]
    community = rng.integers(0, n_comm, n_att)

    # power-law context popularity (Zipf) for the global choice: a few huge keynotes
    pop = rng.permutation(np.arange(1, n_ctx + 1, dtype=np.float64) ** -popularity_exponent)
    pop_cdf = np.cumsum(pop)
    pop_cdf /= pop_cdf[-1]
    ctx_comm = rng.integers(0, n_comm, n_ctx)
    order = np.argsort(ctx_comm, kind="stable")
    comm_ptr = np.searchsorted(ctx_comm[order], np.arange(n_comm + 1))

    att = np.minimum(np.searchsorted(act_cdf, rng.random(n_int)), n_att - 1).astype(np.int64)
    glob = np.minimum(np.searchsorted(pop_cdf, rng.random(n_int)), n_ctx - 1).astype(np.int64)
    k = community[att]
    lo, hi = comm_ptr[k], comm_ptr[k + 1]
    cnt = hi - lo
    # skewed pick inside the community (u^2 favours its first contexts)
    pick = lo + np.minimum((cnt * rng.random(n_int) ** 2).astype(np.int64), np.maximum(cnt - 1, 0))
    local = order[np.minimum(pick, n_ctx - 1)]
    use_local = (rng.random(n_int) < p_community) & (cnt > 0)
    ctx = np.where(use_local, local, glob).astype(np.int64)

    t0 = 1_750_000_000.0
    c_start = t0 + rng.integers(0, 3, n_ctx) * 86400.0 + 8 * 3600.0 + rng.integers(0, 40, n_ctx) * 900.0
    c_dur = rng.integers(2, 7, n_ctx) * 900.0
    arrive = rng.random(n_int) * 0.5
    frac = np.minimum(rng.exponential(0.4, n_int) + 0.05, 1.0 - arrive)
    start = c_start[ctx] + arrive * c_dur[ctx]
    dwell = np.round(frac * c_dur[ctx])
    end = start + dwell
    return SyntheticEvent(att, ctx, dwell.astype(np.float64), start, end, n_att, n_ctx, community)


def to_inputs(ev: SyntheticEvent):  # -> InteractionArrays (import kept lazy for tools that only need arrays)
    from recommendations.engine import InteractionArrays

    return InteractionArrays(ev.attendee, ev.context, ev.weight, ev.n_attendees, ev.n_contexts, ev.start, ev.end)


def to_csr(ev: SyntheticEvent):
    """attendee x context scipy CSR of summed dwell (duplicates merged)."""
    import scipy.sparse as sp

    m = sp.csr_matrix((ev.weight, (ev.attendee, ev.context)), shape=(ev.n_attendees, ev.n_contexts))
    m.sum_duplicates()
    return m


if __name__ == "__main__":
    import sys

    ev = make_event(sys.argv[1] if len(sys.argv) > 1 else "S")
    x = to_csr(ev)
    sizes = np.diff(x.tocsc().indptr)
    print(
        f"nnz={x.nnz} attendees_active={int((np.diff(x.indptr) > 0).sum())} "
        f"context sizes: max={sizes.max()} p99={np.percentile(sizes, 99):.0f} p90={np.percentile(sizes, 90):.0f} "
        f"median={np.median(sizes):.0f}  sum size^2={float((sizes.astype(float) ** 2).sum()):.3g}"
    )
