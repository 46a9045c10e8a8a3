"""Training time with the per-event choice of ranking, against the training it replaced, same run.

    PYTHONPATH=. .venv/bin/python benchmarks/train_choice_speed.py --size M [--repeat 2]

What a training computes beside reading the rows (engine side, the same synthetic event):
  before  the fit of the whole event, plus the offline metrics it published: a second fit on the
          first 70 % of the rows and the top 10 of up to 2,000 attendees (the code of commit
          6d62ef9, `recommendations.backends.local.offline_metrics`, reproduced below as the peer)
  now     `recommendations.engine.ranker.choose_ranker` (two fits on the first half, features and
          logistic regressions, the baselines scored) plus the fit of the whole event with the
          chosen configuration
Printed: wall and CPU seconds of each, and the ratio now / before (the issue's bound: 2x at M).
Numba compilation is excluded by a warm-up on a tiny event. Sizes: recommendations/evaluation/synthetic.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommendations.engine import EngineConfig, InteractionArrays, fit, warm_up
from recommendations.engine.ranker import choose_ranker
from recommendations.evaluation.synthetic import make_event


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def before(x: InteractionArrays, cfg: EngineConfig) -> None:
    """The training of commit 6d62ef9: fit everything, then `offline_metrics` (fit the first 70 %
    of rows, top 10 of up to 2,000 attendees active in both parts)."""
    fit(x, cfg)
    t = x.starts()
    cut = float(np.quantile(t, 0.7))
    early = t < cut
    hist = InteractionArrays(
        x.attendee[early], x.context[early], x.weight[early], x.n_attendees, x.n_contexts, t[early], x.ends()[early]
    )
    model = fit(hist, cfg)
    late = np.unique(x.attendee[~early])
    active = np.intersect1d(np.unique(x.attendee[early]), late)
    targets = active[np.linspace(0, active.size - 1, min(2000, active.size)).astype(int)] if active.size else active
    for a in targets.tolist():
        model.neighbours(a, 10)


def now(x: InteractionArrays, cfg: EngineConfig) -> str:
    choice = choose_ranker(x, cfg)
    fit(x, choice.config)
    return choice.name


def timed(fn, *args):
    w, c = time.perf_counter(), _cpu()
    out = fn(*args)
    return time.perf_counter() - w, _cpu() - c, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="M")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    warm_up()
    ev = make_event(args.size)
    x = InteractionArrays(ev.attendee, ev.context, ev.weight, ev.n_attendees, ev.n_contexts, ev.start, ev.end)
    cfg = EngineConfig()
    choose_ranker(
        InteractionArrays(
            x.attendee[:2000],
            x.context[:2000],
            x.weight[:2000],
            x.n_attendees,
            x.n_contexts,
            x.start[:2000],
            x.end[:2000],
        ),
        cfg,
    )  # sklearn, numba warm
    print(f"size {args.size}: {x.n_attendees:,} attendees, {x.n_contexts:,} contexts, {x.attendee.size:,} interactions")
    head = f"{'run':>4} {'before wall s':>14} {'cpu s':>8} {'now wall s':>11} {'cpu s':>8}"
    print(head + f" {'now/before wall':>16} {'cpu':>6}  chosen")
    for r in range(args.repeat):
        bw, bc, _ = timed(before, x, cfg)
        nw, nc, chosen = timed(now, x, cfg)
        print(f"{r + 1:>4} {bw:14.1f} {bc:8.1f} {nw:11.1f} {nc:8.1f} {nw / bw:16.2f} {nc / bc:6.2f}  {chosen}")


if __name__ == "__main__":
    main()
