"""Real-time update latency: one attendee's new interaction + recompute of the co-present
attendees' neighbour rows (``Model.update``), no refit.

    PYTHONPATH=. .venv/bin/python benchmarks/realtime_update.py --size M

Updates are drawn like the generator's interactions (attendee by activity, context by the
community/popularity mix) from a different seed, so most land in mid-size contexts and some in
the huge keynotes.  Contexts above the cap (frozen at fit time, the same cap training uses)
only record the interaction; their members are not recomputed because the kernel ignores them.
Prints p50/p90/p99/max wall latency, the updating thread's CPU time (updates run serial
kernels, so CPU time is the latency on an otherwise idle core), the load average, the
number of rows recomputed and how (in full, or incrementally with the guard of
``_kernels.member_rows``).  The peer is the physical alternative: the full refit's time is
printed first (``fit``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommendations.engine import EngineConfig, InteractionArrays, fit
from recommendations.evaluation.synthetic import make_event, to_inputs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="M", choices=["S", "M", "L"])
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--cap-percentile", type=float, default=None)
    a = ap.parse_args()
    ev = make_event(a.size, seed=0)
    cfg = EngineConfig() if a.cap_percentile is None else EngineConfig(context_cap_percentile=a.cap_percentile)
    t = time.perf_counter()
    m = fit(to_inputs(ev), cfg)
    print(
        f"size {a.size}: fit {time.perf_counter() - t:.2f} s, cap={m.cap} "
        f"(percentile {cfg.context_cap_percentile}, min {cfg.context_cap_min})"
    )
    upd = make_event(a.size, seed=12345)
    rng = np.random.default_rng(7)
    pick = rng.choice(upd.attendee.shape[0], a.updates + 20, replace=False)
    lat, cpu, nrows = [], [], []
    paths = {"full": 0, "incremental": 0, "fallback": 0}
    for j, i in enumerate(pick):
        one = InteractionArrays(
            upd.attendee[i : i + 1],
            upd.context[i : i + 1],
            upd.weight[i : i + 1],
            m.n_attendees,
            m.n_contexts,
            upd.start[i : i + 1],
            upd.end[i : i + 1],
        )
        c = time.thread_time()
        t = time.perf_counter()
        rows = m.update(one)
        el = time.perf_counter() - t
        ce = time.thread_time() - c
        if j >= 20:  # the first few warm caches (and compile the serial kernels)
            lat.append(el * 1000.0)
            cpu.append(ce * 1000.0)
            nrows.append(rows.shape[0])
            for key in paths:
                paths[key] += m.last_update[key]
    lat_a = np.array(lat)
    nr = np.array(nrows)
    print(
        f"{len(lat)} updates: latency ms p50={np.percentile(lat_a, 50):.2f} p90={np.percentile(lat_a, 90):.2f} "
        f"p99={np.percentile(lat_a, 99):.2f} max={lat_a.max():.2f}"
    )
    cp = np.array(cpu)
    print(
        f"CPU time of the updating thread (robust to other load on the machine) ms: "
        f"p50={np.percentile(cp, 50):.2f} p90={np.percentile(cp, 90):.2f} p99={np.percentile(cp, 99):.2f}"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"rows recomputed per update: p50={np.percentile(nr, 50):.0f} p99={np.percentile(nr, 99):.0f} max={nr.max()}")
    total = max(sum(paths.values()), 1)
    print(
        "how the rows were recomputed: "
        + ", ".join(f"{key} {n} ({n / total:.0%})" for key, n in paths.items())
        + " (full = the attendees who moved and members of contexts that crossed the cap or just got"
        " a second member; incremental = members re-scored only in their pairs with the context;"
        " fallback = members whose guard could not prove the short cut exact, then recomputed in full)"
    )
    print(
        f"target p99 < 20 ms: wall {'met' if np.percentile(lat_a, 99) < 20 else 'NOT met'}, "
        f"CPU {'met' if np.percentile(cp, 99) < 20 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
