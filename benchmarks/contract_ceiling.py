"""What the obvious lists score when they may only name the people the product is given.

    PYTHONPATH=. .venv/bin/python benchmarks/contract_ceiling.py FILE [FILE ...]

The contract harness (`../shared/tools/contract_eval.py`) imports the first day's sessions only, so
an attendee first seen on the second day does not exist in the product, and no list of it can name
them. The data sets' reference baselines rank everyone in the file: a person first seen on day 2
has history degree 0 and sits at the bottom of popularity's list, but at a dense event, where people
met most of the others on day 1, the bottom of the list is inside the first ten people not met yet,
and those newcomers are often met on day 2. This prints, for each file, popularity and repeat +
popularity (the protocol's definitions) ranking everyone, and ranking only the people active on
day 1 (what any list of the product can hold), with the people the second form cannot name.

Then the per-event choice against what it is meant to predict: every candidate `manage.py train`
scores (`recommendations.engine.ranker.choose_ranker`: the obvious lists and the learned weights,
on the first day's own time split), its figures on that split, and the same candidate fitted on
the whole first day and scored on day 2 by the protocol (full lists of the people the product is
given, before the batch's room for new people). The split decides; day 2 is only shown, never
used to choose. Where the two orders disagree, no choice made on the event's own data can find
day 2's best list.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommendations.engine import EngineConfig, fit
from recommendations.engine.ranker import choose_ranker
from recommendations.evaluation import sfhh09 as S


def main(paths: list[str]) -> None:
    for path in paths:
        task = S.protocol_task(path)
        future_only = sum(1 for a in range(task.n) if not task.met[a])
        print(f"## {Path(path).name}: {task.n} people, {future_only} not active on day 1 (unknown to the product)")
        print(f"    {'method':40s} {'all P@10':>9s} {'new R@10':>9s}")
        for name, scorer in (
            ("popularity", S.baseline_popularity(task)),
            ("repeat + popularity", S.baseline_repeat_popularity(task)),
        ):
            for label, s in ((name, scorer), (f"{name}, day-1 people only", S.only_known(task, scorer))):
                all_m, new_m = S.evaluate(task, s)
                print(f"    {label:40s} {all_m.precision:9.3f} {new_m.recall:9.3f}")
        split_against_day2(task)


def split_against_day2(task: S.Task) -> None:
    x = S.session_inputs(task)
    choice = choose_ranker(x, EngineConfig())
    print(f"    the per-event choice (defaults): {choice.name} serves")
    print(f"    {'candidate':32s} {'split all P@10':>14s} {'new R@10':>9s} | {'day 2 all P@10':>14s} {'new R@10':>9s}")
    for name, cfg in choice.candidates.items():
        model = fit(x, cfg)

        def scorer(a: int, model=model) -> np.ndarray:
            return model.score_row(a)

        v = choice.validation[name]
        all_m, new_m = S.evaluate(task, S.only_known(task, scorer))
        print(f"    {name:32s} {v.all_p:14.3f} {v.new_r:9.3f} | {all_m.precision:14.3f} {new_m.recall:9.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["data/sfhh09/tij_SFHH.dat", "../shared/data/ws16/tij_WS16.dat"])
