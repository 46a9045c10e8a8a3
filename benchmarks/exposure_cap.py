"""The quality cost of the exposure cap on real conference data (SFHH 2009 face-to-face contacts).

    .venv/bin/python benchmarks/exposure_cap.py [--data ../shared/data/sfhh09/tij_SFHH.dat]

Protocol of `shared/data/sfhh09/README.md`: history = day 0, future = day 1; an attendee is
evaluated when they have history contacts and a meaningful future contact (>= 60 s on day 1);
targets "all" (every meaningful future partner) and "new-only" (not met on day 0, already-met
people removed from the candidates). For each recommender, ranked lists of depth 50 are computed
for every attendee with a history, then cut to 10 by `recommendations.serving.exposure.apply_exposure_cap`
at several shares (1.0 = no cap), and scored. Printed per share: recall@10, precision@10, the
largest share of lists one attendee is in, and how many distinct attendees are suggested at all.

The recommenders are the data set's reference baselines, computed here (no Django, no database):
popularity (the worst case for exposure: everyone gets the same ten), Adamic-Adar on the history
graph, and repeat contacts padded by popularity; and the product's local model (the engine, fitted
on the day-0 sessions of `recommendations.evaluation.sfhh09`): with the FACE_TO_FACE preset (what
`benchmarks/sfhh09_quality.py` chooses on day 0 only), and with `EngineConfig()` defaults.
"""

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommendations.engine import FACE_TO_FACE, EngineConfig, InteractionArrays, fit  # noqa: E402  (pure numpy/numba)
from recommendations.evaluation import sfhh09 as S  # noqa: E402
from recommendations.serving.exposure import apply_exposure_cap  # noqa: E402  (pure: no Django setup needed)

DEFAULT_DATA = S.DEFAULT_PATH  # data/sfhh09 (CC0)
MEANINGFUL_SECONDS = 60
DEPTH = 50
K = 10
SHARES = [1.0, 0.2, 0.1, 0.05, 0.02]


def load(path: Path):
    """Contact seconds per pair of raw person ids (lower first): (day 0, day 1), as the protocol
    module splits and sums them."""
    history, future = S.split_days(S.load_contacts(path))
    ids = history.person_ids.tolist()  # sorted: the lower dense index is the lower raw id
    return tuple(
        {(ids[a], ids[b]): seconds for (a, b), seconds in S.pair_durations(day).items()} for day in (history, future)
    )


def neighbours(pairs: dict[tuple[int, int], int]) -> dict[int, dict[int, int]]:
    out: dict[int, dict[int, int]] = defaultdict(dict)
    for (i, j), seconds in pairs.items():
        out[i][j] = seconds
        out[j][i] = seconds
    return out


def ranked_lists(history_pairs, new_only: bool, path: Path) -> dict[str, dict[int, list[int]]]:
    hist = neighbours(history_pairs)
    people = sorted(hist)
    degree = {p: len(hist[p]) for p in people}
    by_popularity = sorted(people, key=lambda p: (-degree[p], p))

    def cut(viewer: int, ranked) -> list[int]:
        out = []
        seen = {viewer}
        if new_only:
            seen |= set(hist[viewer])
        for c in ranked:
            if c not in seen:
                seen.add(c)
                out.append(c)
                if len(out) == DEPTH:
                    break
        return out

    lists = {"popularity": {}, "adamic-adar": {}, "repeat+popularity": {}}
    lists |= engine_lists(new_only, cut, people, path)
    for v in people:
        lists["popularity"][v] = cut(v, by_popularity)
        scores: dict[int, float] = defaultdict(float)
        for z in hist[v]:
            if degree[z] > 1:
                for c in hist[z]:
                    scores[c] += 1.0 / math.log(degree[z])
        aa = sorted(scores, key=lambda c: (-scores[c], -degree[c], c))
        lists["adamic-adar"][v] = cut(v, aa + by_popularity)
        repeat = sorted(hist[v], key=lambda c: (-hist[v][c], c))
        lists["repeat+popularity"][v] = cut(v, repeat + by_popularity)
    return lists


def engine_lists(new_only: bool, cut, people: list[int], path: Path) -> dict[str, dict[int, list[int]]]:
    """Depth-50 lists of the local model, keyed by raw person id like the baselines' lists."""
    history, _ = S.split_days(S.load_contacts(path))
    sessions = S.build_sessions(history)
    ids = history.person_ids
    index = {int(pid): i for i, pid in enumerate(ids.tolist())}
    x = InteractionArrays(
        sessions.attendee,
        sessions.session,
        sessions.dwell,
        ids.size,
        sessions.n_sessions,
        sessions.start - S.TICK_S,
        sessions.end,
    )
    out = {}
    for name, cfg in (("local model FACE_TO_FACE", FACE_TO_FACE), ("local model default", EngineConfig())):
        model = fit(x, cfg)
        ranked = {}
        for v in people:
            scores = model.score_row(index[v])
            order = sorted(range(ids.size), key=lambda b: (-scores[b], b))[: DEPTH + 400]
            ranked[v] = cut(v, [int(ids[b]) for b in order])
        out[name] = ranked
    return out


def score(top: dict[int, list[int]], truth: dict[int, set[int]]) -> tuple[float, float]:
    """Mean recall@10 and precision@10 over the viewers that have a truth set."""
    recall = precision = 0.0
    viewers = [v for v in truth if v in top]
    for v in viewers:
        hits = len(truth[v].intersection(top[v][:K]))
        recall += hits / len(truth[v])
        precision += hits / K
    return recall / len(viewers), precision / len(viewers)


def exposure(top: dict[int, list[int]]) -> tuple[float, int]:
    counts: dict[int, int] = defaultdict(int)
    for items in top.values():
        for c in items[:K]:
            counts[c] += 1
    return max(counts.values()) / len(top), len(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data}: no such file (see shared/data/sfhh09/README.md)")
    history, future = load(args.data)
    hist = neighbours(history)
    fut = neighbours({p: s for p, s in future.items() if s >= MEANINGFUL_SECONDS})
    truth_all = {v: set(fut[v]) for v in hist if fut.get(v)}
    truth_new = {v: {c for c in fut[v] if c not in hist[v]} for v in hist if fut.get(v)}
    truth_new = {v: t for v, t in truth_new.items() if t}
    print(
        f"sfhh09: {len(hist)} attendees with a history; evaluated {len(truth_all)} (all), "
        f"{len(truth_new)} (new-only); lists of depth {DEPTH} cut to {K}"
    )
    for target, truth, new_only in (("all", truth_all, False), ("new-only", truth_new, True)):
        print(f"\n target: {target}")
        print(f"  {'recommender':<18} {'share':>6} {'R@10':>7} {'P@10':>7} {'max share':>10} {'distinct':>9}")
        for name, lists in ranked_lists(history, new_only, args.data).items():
            base = None
            for share in SHARES:
                top = apply_exposure_cap(lists, share, k=K)
                r, p = score(top, truth)
                max_share, distinct = exposure(top)
                base = base or r
                cost = "" if share == 1.0 else f"  ({(r - base) / base:+.0%} recall)" if base else ""
                print(f"  {name:<18} {share:>6.2f} {r:7.3f} {p:7.3f} {max_share:10.3f} {distinct:9d}{cost}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
