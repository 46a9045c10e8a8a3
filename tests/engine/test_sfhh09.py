"""SFHH09 loader and session construction against the data set README's figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from recommendations.evaluation import sfhh09 as S

PATH = Path(os.environ.get("SFHH09_PATH", str(S.DEFAULT_PATH)))
pytestmark = pytest.mark.skipif(not PATH.exists(), reason=f"SFHH09 data not found at {PATH}")


@pytest.fixture(scope="module")
def contacts() -> S.Contacts:
    return S.load_contacts(PATH)


def test_load_contacts_counts_rows_people_pairs(contacts):
    assert contacts.t.shape[0] == 70_261
    assert contacts.n_people == 403
    assert len(S.pair_durations(contacts)) == 9_565


def test_split_days_counts_rows_per_day(contacts):
    h, f = S.split_days(contacts)
    assert (h.t.shape[0], f.t.shape[0]) == (45_776, 24_485)


def test_the_split_does_not_depend_on_where_the_clock_starts(contacts):
    # Most files of this kind count seconds from the epoch: the day boundary must still be the night.
    shifted = S.Contacts(t=contacts.t + 1_480_000_123, i=contacts.i, j=contacts.j, person_ids=contacts.person_ids)
    h, f = S.split_days(shifted)
    assert (h.t.shape[0], f.t.shape[0]) == (45_776, 24_485)
    assert np.array_equal(h.t - 1_480_000_123, S.split_days(contacts)[0].t)


def test_load_contacts_reads_the_first_three_columns_of_files_that_add_classes(tmp_path):
    path = tmp_path / "school.dat"
    path.write_text("100\t7\t9\t5A\t5B\n120\t7\t3\t5A\tTeachers\n")
    c = S.load_contacts(path)
    assert (c.t.tolist(), c.person_ids.tolist()) == ([100, 120], [3, 7, 9])
    assert (c.person_ids[c.i].tolist(), c.person_ids[c.j].tolist()) == ([7, 7], [9, 3])


def test_day_index_cuts_at_nights_and_falls_back_to_24_hour_windows():
    hour = 3600
    three_days = np.array([9, 11, 14, 32, 35, 57, 58], dtype=np.int64) * hour  # nights 14->32, 35->57
    assert S.day_index(three_days).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert S.day_index(three_days[::-1]).tolist() == [2, 2, 1, 1, 0, 0, 0]  # by time, not by row order
    never_quiet = np.arange(0, 60 * hour, 3 * hour, dtype=np.int64) + 7
    assert S.day_index(never_quiet).tolist() == [0] * 8 + [1] * 8 + [2] * 4


def test_build_sessions_60s_day0_matches_readme(contacts):
    h, _ = S.split_days(contacts)
    st = S.session_stats(S.build_sessions(h, 60))
    assert st["n_sessions"] == 10_248
    assert st["median_size"] == 2
    assert st["p90_size"] == 5


def test_build_sessions_15min_day0_matches_readme(contacts):
    h, _ = S.split_days(contacts)
    st = S.session_stats(S.build_sessions(h, 900))
    assert st["n_sessions"] == 447
    assert st["max_size"] == 311


def test_protocol_task_counts_evaluated_attendees():
    task = S.protocol_task(PATH)
    assert len(task.targets_all) == 348
    assert len(task.targets_new) == 328


def test_sessions_dwell_is_20s_per_tick(contacts):
    h, _ = S.split_days(contacts)
    s = S.build_sessions(h, 60)
    assert np.all(s.dwell % 20 == 0) and s.dwell.min() == 20 and s.dwell.max() <= 60
    assert np.all(s.end - s.start == s.dwell - 20) or np.all(s.end >= s.start)


def test_baselines_reproduce_readme_popularity_and_repeat():
    task = S.protocol_task(PATH)
    pop_all, pop_new = S.evaluate(task, S.baseline_popularity(task))
    rep_all, _ = S.evaluate(task, S.baseline_repeat_popularity(task))
    assert (round(pop_all.recall, 3), round(pop_all.precision, 3), round(pop_all.hit, 3)) == (0.077, 0.056, 0.388)
    assert (round(pop_new.recall, 3), round(pop_new.precision, 3), round(pop_new.hit, 3)) == (0.073, 0.040, 0.299)
    assert (round(rep_all.recall, 3), round(rep_all.precision, 3), round(rep_all.hit, 3)) == (0.253, 0.165, 0.759)


def test_paired_difference_interval_covers_the_mean_and_separates_a_clear_gain():
    rng = np.random.default_rng(1)
    base = rng.random(300)
    same = S.paired_difference(base, base)
    assert (same.mean, same.lo, same.hi) == (0.0, 0.0, 0.0)
    noisy = S.paired_difference(base + rng.normal(0, 0.2, 300), base)
    assert noisy.lo < noisy.mean < noisy.hi and noisy.lo < 0 < noisy.hi  # zero-mean noise: no verdict
    gain = S.paired_difference(base + 0.1 + rng.normal(0, 0.2, 300), base)
    assert gain.lo > 0  # a real improvement of 0.1 stands out of that noise


def test_per_target_rows_average_to_the_reported_metrics():
    task = S.protocol_task(PATH)
    all_rows, new_rows = S.per_target(task, S.baseline_popularity(task))
    assert all_rows.shape == (348, 3) and new_rows.shape == (328, 3)
    pop_all, pop_new = S.evaluate(task, S.baseline_popularity(task))
    assert np.allclose(all_rows.mean(axis=0), [pop_all.recall, pop_all.precision, pop_all.hit])
    assert np.allclose(new_rows.mean(axis=0), [pop_new.recall, pop_new.precision, pop_new.hit])
