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
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommendations.evaluation import sfhh09 as S


def only_known(task: S.Task, scorer: S.Scorer) -> S.Scorer:
    known = np.array([bool(m) for m in task.met])

    def f(a: int) -> np.ndarray:
        return np.where(known, scorer(a), -np.inf)

    return f


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
            for label, s in ((name, scorer), (f"{name}, day-1 people only", only_known(task, scorer))):
                all_m, new_m = S.evaluate(task, s)
                print(f"    {label:40s} {all_m.precision:9.3f} {new_m.recall:9.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["data/sfhh09/tij_SFHH.dat", "../shared/data/ws16/tij_WS16.dat"])
