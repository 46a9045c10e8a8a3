"""SFHH09: would a learned, non-linear ranker over more pair features beat the engine's linear
four-feature score?  A negative result, kept so that it can be re-run.

Same discipline as ``sfhh09_quality.py``: models are trained on the three day-0 internal splits
only (history = day 0 before the 40/50/60 % time quantile, future = the rest of day 0), first
scored by 5-fold cross-validation grouped by target attendee on those splits, then once on the
protocol (day 0 -> day 1), with the paired bootstrap interval against the baseline to beat.

Pair features (target a, candidate b), from the 60 s sessions only (what the engine sees):
  0-3  the engine's four (direct / row max, two-hop / row max, log1p shared sessions, log1p degree)
  4    log1p(time together / 60 s): sum over shared sessions of min(dwell_a, dwell_b)
  5    pair recency: exp(-(end of history - last shared session) / 2 h)
  6    candidate recency: exp(-(end of history - b's last session) / 2 h)
  7    Adamic-Adar on the session graph, row-normalised
  8    log1p(time in sessions of exactly the two of them / 60 s)
  9    log1p(b's distinct partners in the last 2 h of history)
  10   time together / row max

    PYTHONPATH=. .venv/bin/python benchmarks/sfhh09_learned_ranker.py      (~1 min on 2 cores)
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sfhh09_quality import inputs, target_weights, training_pairs

from recommendations.engine import EngineConfig, fit
from recommendations.evaluation import sfhh09 as S

# The structure the matchmaking objective picks in sfhh09_quality.py (weights are re-learned here).
M = EngineConfig(min_co_count=2, context_cap=8, direct_transform="log", value_transform="sqrt")
TWO_HOURS = 7200.0
BASE = [0, 1, 2, 3]
NON_TEMPORAL = [0, 1, 2, 3, 4, 7, 8, 10]
ALL = list(range(11))
GBM = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15}


def pair_tables(task: S.Task) -> dict:
    s, n = task.sessions, task.n
    end_of_history = float(s.end.max())
    members = defaultdict(list)
    for a, c, d, e in zip(s.attendee.tolist(), s.session.tolist(), s.dwell.tolist(), s.end.tolist(), strict=True):
        members[c].append((a, d, e))
    together, dyad = np.zeros((n, n)), np.zeros((n, n))
    last = np.full((n, n), -1e12)
    recent = np.zeros((n, n), dtype=bool)
    for group in members.values():
        for x, (a, da, ea) in enumerate(group):
            for b, db, eb in group[x + 1 :]:
                t = min(da, db)
                together[a, b] += t
                together[b, a] += t
                last[a, b] = last[b, a] = max(last[a, b], min(ea, eb))
                if len(group) == 2:
                    dyad[a, b] += t
                    dyad[b, a] += t
                if group[0][2] >= end_of_history - TWO_HOURS:
                    recent[a, b] = recent[b, a] = True
    last_seen = np.full(n, -1e12)
    np.maximum.at(last_seen, s.attendee, s.end.astype(np.float64))
    adj = (together > 0).astype(np.float64)
    aa = adj @ (adj / np.log(np.maximum(adj.sum(1), 2))[:, None])
    np.fill_diagonal(aa, 0.0)
    return {
        "together": together,
        "dyad": dyad,
        "pair_recency": np.exp(-(end_of_history - last) / TWO_HOURS),
        "cand_recency": np.exp(-(end_of_history - last_seen) / TWO_HOURS),
        "aa": aa,
        "recent_degree": np.log1p(recent.sum(1)),
    }


def features(model, tab: dict, a: int) -> np.ndarray:
    t = tab["together"][a]
    return np.hstack(
        [
            model.features(a),
            np.column_stack(
                [
                    np.log1p(t / 60),
                    tab["pair_recency"][a],
                    tab["cand_recency"],
                    tab["aa"][a] / max(tab["aa"][a].max(), 1e-9),
                    np.log1p(tab["dyad"][a] / 60),
                    tab["recent_degree"],
                    t / max(t.max(), 1e-9),
                ]
            ),
        ]
    )


class Prepared:
    """One task with its fitted engine, pair tables and the training rows of every target."""

    def __init__(self, task: S.Task) -> None:
        self.task = task
        self.model = fit(inputs(task), M)
        self.tab = pair_tables(task)
        self.feats = {a: features(self.model, self.tab, a) for a in set(task.targets_all) | set(task.targets_new)}

    def rows(self):
        return training_pairs(self.task, self.feats.__getitem__)


def train(kind: str, x: np.ndarray, y: np.ndarray, w: np.ndarray):
    if kind in ("linear", "linear, per target"):
        sw = w / w.mean() if kind == "linear, per target" else None
        coef = LogisticRegression(C=1.0, max_iter=3000).fit(x, y, sample_weight=sw).coef_[0]
        return lambda f: f @ coef
    gbm = HistGradientBoostingClassifier(random_state=0, **GBM).fit(x, y)
    return lambda f: gbm.predict_proba(f)[:, 1]


def summary(results: list[tuple[S.Metrics, S.Metrics]]) -> str:
    m = np.mean([[r[0].recall, r[0].precision, r[1].recall, r[1].precision] for r in results], axis=0)
    return f"all R {m[0]:.3f} P {m[1]:.3f} | new R {m[2]:.3f} P {m[3]:.3f}"


def main() -> None:
    t0 = time.time()
    internal = [Prepared(S.internal_task(frac=f)) for f in (0.4, 0.5, 0.6)]
    proto = Prepared(S.protocol_task())
    rows = [list(p.rows()) for p in internal]
    fold = np.random.default_rng(0).integers(0, 5, internal[0].task.n)
    models = [
        ("linear, engine's 4 features", "linear", BASE),
        ("linear, 4 features, per-target weights", "linear, per target", BASE),
        ("linear, + 4 non-temporal pair features", "linear", NON_TEMPORAL),
        ("gradient boosting, engine's 4 features", "gbm", BASE),
        ("gradient boosting, all 11 features", "gbm", ALL),
    ]
    base = [S.run_baselines(p.task) for p in internal]
    ref = [(b["repeat + popularity"][0], b["popularity"][1]) for b in base]
    print(
        "internal splits, baselines to beat (mean of 3): repeat+popularity all "
        f"R {np.mean([r[0].recall for r in ref]):.3f} P {np.mean([r[0].precision for r in ref]):.3f}; "
        f"popularity new R {np.mean([r[1].recall for r in ref]):.3f} P {np.mean([r[1].precision for r in ref]):.3f}"
    )
    print("\n# internal splits, 5-fold cross-validation grouped by target attendee")
    for name, kind, cols in models:
        scores = [{} for _ in internal]
        for k in range(5):
            x = np.vstack([f[:, cols] for r in rows for a, f, _ in r if fold[a] != k])
            y = np.concatenate([lab for r in rows for a, _, lab in r if fold[a] != k])
            w = np.concatenate([target_weights(lab) for r in rows for a, _, lab in r if fold[a] != k])
            score = train(kind, x, y, w)
            for i, p in enumerate(internal):
                for a, f in p.feats.items():
                    if fold[a] == k:
                        scores[i][a] = score(f[:, cols])
        res = [S.evaluate(p.task, scores[i].__getitem__) for i, p in enumerate(internal)]
        print(f"{name:42s} {summary(res)}", flush=True)

    print("\n# protocol (day 0 -> day 1), trained on all internal rows; paired difference [95 % interval]")
    print(
        {
            k: (round(v[0].recall, 3), round(v[0].precision, 3), round(v[1].recall, 3), round(v[1].precision, 3))
            for k, v in S.run_baselines(proto.task).items()
            if k in ("popularity", "repeat + popularity")
        }
    )
    x_all = np.vstack([f for r in rows for _, f, _ in r])
    y_all = np.concatenate([lab for r in rows for _, _, lab in r])
    w_all = np.concatenate([target_weights(lab) for r in rows for _, _, lab in r])
    for name, kind, cols in models:
        score = train(kind, x_all[:, cols], y_all, w_all)
        cache = {a: score(f[:, cols]) for a, f in proto.feats.items()}
        r = S.evaluate(proto.task, cache.__getitem__)
        d = S.versus_baselines(proto.task, cache.__getitem__)
        print(f"{name:42s} {summary([r])}")
        print(" " * 42 + " " + "; ".join(f"{k}: {v}" for k, v in d.items()), flush=True)
    print("\n# two ranking rules for 'all' around the engine's score (matchmaking pick of sfhh09_quality.py)")
    picked = dataclasses.replace(M, w_direct=0.608, w_two_hop=1.144, w_repeat=0.87, w_social=0.148)
    for label, tasks in (("internal splits (mean of 3)", [p.task for p in internal]), ("protocol", [proto.task])):
        for name, rule in RULES.items():
            res = []
            for task in tasks:
                res.append(S.evaluate(task, rule(task, fit(inputs(task), picked))))
            print(f"{label:28s} {name:44s} {summary(res)}")
    print(f"\nelapsed {time.time() - t0:.0f} s")


def _met_first_engine_order(task: S.Task, model):
    def score(a: int) -> np.ndarray:
        s = model.score_row(a)
        s[list(task.met[a])] += 1e6
        return s

    return score


def _met_first_by_time_together(task: S.Task, model):
    together = S.baseline_repeat_popularity(task)

    def score(a: int) -> np.ndarray:
        s = model.score_row(a)
        s -= s.min()
        met = list(task.met[a])
        s[met] = 1e6 + together(a)[met]
        return s

    return score


RULES = {
    "engine score": lambda task, model: model.score_row,
    "met first, in the engine's order": _met_first_engine_order,
    "met first by time together, engine fills": _met_first_by_time_together,
}


if __name__ == "__main__":
    main()
