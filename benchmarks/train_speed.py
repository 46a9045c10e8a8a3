"""Training speed: full top-25 neighbour table for every attendee, side by side.

Methods (each in its own subprocess so peak memory is per method):
  ours           engine.fit (stage 1 capped co-presence kernel + stage 2 final table), default config
  ours-uncapped  engine.fit with no context cap (same arithmetic as implicit: every context)
  implicit       implicit.nearest_neighbours.CosineRecommender(K=26).fit + similar_items(all)
  sklearn        NearestNeighbors(metric='cosine', algorithm='brute').kneighbors, chunked rows;
                 stopped after --sk-budget seconds and extrapolated linearly (marked "~")

    PYTHONPATH=. .venv/bin/python benchmarks/train_speed.py --size M
    PYTHONPATH=. .venv/bin/python benchmarks/train_speed.py --size L --methods ours

"cpu" = user+sys CPU seconds of the timed section (all methods may use both cores; CPU time
is the figure to compare when the machine is shared).  Wall time excludes data generation and
matrix building; numba compilation is excluded by a warm-up fit on a tiny event.  Peak memory =
ru_maxrss of the child (includes the input data), "base" = ru_maxrss right after the inputs were built.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOPK = 25


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_child(method: str, size: str, seed: int, sk_budget: float) -> dict:
    import numpy as np

    from recommendations.evaluation.synthetic import make_event, to_csr, to_inputs

    ev = make_event(size, seed)
    out: dict = {"method": method, "size": size}
    if method.startswith("ours"):
        from recommendations.engine import EngineConfig, fit

        cfg = EngineConfig(top_k=TOPK)
        if method == "ours-uncapped":
            cfg = EngineConfig(top_k=TOPK, context_cap=ev.n_attendees + 1)
        fit(to_inputs(make_event((200, 20, 2000), 1)), cfg)  # numba warm-up (cached compile)
        x = to_inputs(ev)
        out["base_mib"] = _rss_mib()
        out["cpu0"] = _cpu()
        t = time.perf_counter()
        m = fit(x, cfg)
        out["seconds"] = time.perf_counter() - t
        out["cap"] = m.cap
        out["rows"] = int(m.tab_i.shape[0])
    elif method == "implicit":
        from implicit.nearest_neighbours import CosineRecommender
        from threadpoolctl import threadpool_limits

        ctx_att = to_csr(ev).T.tocsr()  # users = contexts, items = attendees
        out["base_mib"] = _rss_mib()
        out["cpu0"] = _cpu()
        with threadpool_limits(1, "blas"):
            t = time.perf_counter()
            rec = CosineRecommender(K=TOPK + 1, num_threads=0)
            rec.fit(ctx_att, show_progress=False)
            t_fit = time.perf_counter() - t
            ids, _scores = rec.similar_items(np.arange(ev.n_attendees), N=TOPK + 1)
            out["seconds"] = time.perf_counter() - t
        out["fit_seconds"] = t_fit
        out["rows"] = int(ids.shape[0])
    elif method == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        x = to_csr(ev)
        out["base_mib"] = _rss_mib()
        out["cpu0"] = _cpu()
        t = time.perf_counter()
        nn = NearestNeighbors(n_neighbors=TOPK + 1, metric="cosine", algorithm="brute", n_jobs=2).fit(x)
        chunk = 1000
        done = 0
        while done < x.shape[0]:
            nn.kneighbors(x[done : done + chunk], n_neighbors=TOPK + 1)
            done = min(done + chunk, x.shape[0])
            if time.perf_counter() - t > sk_budget:
                break
        el = time.perf_counter() - t
        out["rows"] = done
        out["seconds"] = el * x.shape[0] / done
        out["extrapolated"] = done < x.shape[0]
    else:
        raise SystemExit(f"unknown method {method}")
    out["peak_mib"] = _rss_mib()
    out["cpu_s"] = _cpu() - out.pop("cpu0")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="M", choices=["S", "M", "L"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="ours,ours-uncapped,implicit,sklearn")
    ap.add_argument("--sk-budget", type=float, default=90.0, help="seconds before sklearn is extrapolated")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run_child(a.child, a.size, a.seed, a.sk_budget)))
        return
    from recommendations.evaluation.synthetic import SIZES

    n_att, n_ctx, n_int = SIZES[a.size]
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print(
        f"size {a.size}: {n_att} attendees, {n_ctx} contexts, {n_int} interactions, top-{TOPK}, {os.cpu_count()} cores"
    )
    res = {}
    for method in a.methods.split(","):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.run(
            [
                sys.executable,
                __file__,
                "--size",
                a.size,
                "--seed",
                str(a.seed),
                "--sk-budget",
                str(a.sk_budget),
                "--child",
                method,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if p.returncode != 0:
            print(f"{method:14s} FAILED: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        res[method] = r
        extra = f" (fit {r['fit_seconds']:.2f} s)" if "fit_seconds" in r else ""
        extra += f" cap={r['cap']}" if "cap" in r else ""
        mark = "~" if r.get("extrapolated") else " "
        print(
            f"{method:14s} {mark}{r['seconds']:9.2f} s  cpu {r['cpu_s']:8.2f} s  "
            f"peak {r['peak_mib']:8.0f} MiB (base {r['base_mib']:.0f})"
            f"{extra}" + (f"  [{r['rows']} rows measured, extrapolated]" if r.get("extrapolated") else ""),
            flush=True,
        )
    if "ours" in res:
        for other in ("ours-uncapped", "implicit", "sklearn"):
            if other in res:
                print(f"speed-up ours vs {other}: {res[other]['seconds'] / res['ours']['seconds']:.1f}x")


if __name__ == "__main__":
    main()
