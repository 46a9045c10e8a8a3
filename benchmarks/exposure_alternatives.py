"""Two ways to spread suggestions that were tried against the shipped exposure cap, and not shipped.

    PYTHONPATH=. .venv/bin/python benchmarks/exposure_alternatives.py [FILE ...]

For each contact file (default: SFHH09, then WS16), the ranking the per-event choice picks
(`choose_ranker` with the defaults), in two settings: fitted on the first half of day 1 and scored
on its second half (the event's own split, where any choice would have to be made), and fitted on
day 1 and scored on day 2 by the protocol (shown, never used to choose). Lists naming only people
with a history, their first 50 cut to the 10 shown (the rest follows in rank order) by:

- **round robin**, the shipped cap (`recommendations.serving.exposure.apply_exposure_cap`): rank by
  rank across all viewers, a capped person's scarce places going to whoever ranks them highest;
- **score-aware**: (viewer, candidate) pairs by the model's score, highest first, a pair taken while
  the viewer has room and the candidate is under the cap; lists still short are filled with their
  least exposed candidates, as the round robin's fallback does;
- **penalty + cap**: each candidate's score lowered by ``lam x spread x log1p(times in a top ten /
  the even share)``, iterated eight times with damping, then the round robin.

Printed per method and cap share: the share of shown suggestions that go to the most-suggested 1 %
of attendees, all P@10, new-only R@10 and its loss against no cap. The goal of issue 15 is at most
3 % at no more than 5 % loss.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.contact_quality import DEPTH, K, capped, top_share  # noqa: E402
from recommendations.engine import EngineConfig, InteractionArrays, fit  # noqa: E402
from recommendations.engine import ranker as R  # noqa: E402
from recommendations.evaluation import sfhh09 as S  # noqa: E402
from recommendations.serving.exposure import exposure_cap_count  # noqa: E402

KEEP = DEPTH + 400  # what follows the shown ten, for "people not met yet" (as contact_quality.py)
SHARES = (0.1, 0.05, 0.03)
PENALTIES = (0.1, 0.2)
Lists = dict[int, list[int]]
Scores = dict[int, np.ndarray]


def ranked(x: InteractionArrays, cfg: EngineConfig) -> tuple[Lists, Scores]:
    model = fit(x, cfg)
    unknown = np.ones(x.n_attendees, dtype=bool)
    unknown[x.attendee] = False
    lists, scores = {}, {}
    for a in sorted(set(x.attendee.tolist())):
        s = model.score_row(a)
        s[a] = -np.inf
        s[unknown] = -np.inf
        order = np.lexsort((np.arange(s.size), -s))
        lists[a] = [int(b) for b in order[:KEEP] if np.isfinite(s[b])]
        scores[a] = s
    return lists, scores


def shown(lists: Lists, top: Lists) -> Lists:
    return {a: top[a] + [b for b in lists[a] if b not in set(top[a])] for a in lists}


def round_robin(lists: Lists, scores: Scores, share: float) -> Lists:
    return capped(lists, share)


def score_aware(lists: Lists, scores: Scores, share: float) -> Lists:
    cap = exposure_cap_count(share=share, n_lists=len(lists))
    pairs = sorted((-float(scores[a][b]), a, b) for a, items in lists.items() for b in items[:DEPTH])
    top: Lists = {a: [] for a in lists}
    counts: Counter[int] = Counter()
    for _, a, b in pairs:
        if len(top[a]) < K and counts[b] < cap:
            top[a].append(b)
            counts[b] += 1
    for a, items in lists.items():
        rest = sorted((b for b in items[:DEPTH] if b not in top[a]), key=lambda b: (counts[b], items.index(b)))
        for b in rest[: K - len(top[a])]:
            top[a].append(b)
            counts[b] += 1
    return shown(lists, {a: sorted(t, key=lambda b: (-scores[a][b], b)) for a, t in top.items()})


def penalised(lists: Lists, scores: Scores, lam: float) -> tuple[Lists, Scores]:
    viewers = list(lists)
    matrix = np.vstack([scores[a] for a in viewers])
    matrix[~np.isfinite(matrix)] = -1e18
    spread = float(np.std(np.sort(matrix, axis=1)[:, -K:]))
    even = K * len(viewers) / matrix.shape[1]
    penalty = np.zeros(matrix.shape[1])
    current = lists
    for _ in range(8):
        counts = np.bincount([b for items in current.values() for b in items[:K]], minlength=matrix.shape[1])
        penalty = 0.5 * penalty + 0.5 * lam * spread * np.log1p(counts / even)
        adjusted = {a: matrix[i] - penalty for i, a in enumerate(viewers)}
        current = {
            a: [int(b) for b in np.lexsort((np.arange(s.size), -s))[:KEEP] if s[b] > -1e17] for a, s in adjusted.items()
        }
    return current, adjusted


def split_scorer(x: InteractionArrays) -> tuple[Callable[[Lists], tuple[float, float]], InteractionArrays]:
    """The ranker's own split: history, and a function scoring lists against its future."""
    parts = R.time_split(x)
    assert parts is not None
    history, future = parts
    split = R._make_split(history, future, 0)
    fut = {a: set(split.future[a].tolist()) for a in split.targets.tolist()}
    met = {a: set(split.met[a].tolist()) for a in split.targets.tolist()}

    def score(lists: Lists) -> tuple[float, float]:
        p = r = 0.0
        n_new = 0
        for a, truth in fut.items():
            p += sum(b in truth for b in lists[a][:K]) / K
            new = truth - met[a]
            if new:
                r += sum(b in new for b in [b for b in lists[a] if b not in met[a]][:K]) / len(new)
                n_new += 1
        return p / len(fut), r / max(1, n_new)

    return score, history


def day2_scorer(task: S.Task) -> Callable[[Lists], tuple[float, float]]:
    def score(lists: Lists) -> tuple[float, float]:
        all_m, new_m = S.evaluate(task, S.lists_scorer(task, lists), K)
        return all_m.precision, new_m.recall

    return score


def report(label: str, x: InteractionArrays, cfg: EngineConfig, score) -> None:
    lists, scores = ranked(x, cfg)
    p0, r0 = score(lists)
    print(f"  {label}: no cap: top 1 % {top_share(lists):5.1%}, all P@10 {p0:.3f}, new R@10 {r0:.3f}")
    print(f"    {'method':22s} {'share':>6s} {'top 1 %':>8s} {'all P@10':>9s} {'new R@10':>9s} {'loss':>7s}")
    rows = []
    for share in SHARES:
        rows.append(("round robin (shipped)", share, round_robin(lists, scores, share)))
        rows.append(("score-aware", share, score_aware(lists, scores, share)))
        for lam in PENALTIES:
            plists, pscores = penalised(lists, scores, lam)
            rows.append((f"penalty {lam} + cap", share, round_robin(plists, pscores, share)))
    for name, share, out in rows:
        p, r = score(out)
        loss = (r0 - r) / r0 if r0 else 0.0
        print(f"    {name:22s} {share:6.3f} {top_share(out):8.1%} {p:9.3f} {r:9.3f} {loss:7.1%}")


def main(paths: list[str]) -> None:
    for path in paths:
        task = S.protocol_task(path)
        x = S.session_inputs(task)
        choice = R.choose_ranker(x, EngineConfig())
        print(f"## {Path(path).name}: {choice.name} (the per-event choice, defaults)")
        score, history = split_scorer(x)
        report("the event's own split (first half of day 1 -> second half)", history, choice.config, score)
        report("day 1 -> day 2 (the protocol; shown, not used to choose)", x, choice.config, day2_scorer(task))


if __name__ == "__main__":
    main(sys.argv[1:] or ["data/sfhh09/tij_SFHH.dat", "../shared/data/ws16/tij_WS16.dat"])
