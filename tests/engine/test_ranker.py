"""The per-event choice of how to rank (recommendations.engine.ranker): its truth, its candidates,
its decision, and that it is repeatable."""

import dataclasses
import math

import numpy as np
import pytest

from recommendations.engine import FACE_TO_FACE, EngineConfig, fit
from recommendations.engine import ranker as R
from recommendations.engine.ranker import (
    BASELINES,
    LEARNED_WINS,
    POPULARITY_PARTNERS,
    POPULARITY_TIME,
    REPEAT_POPULARITY,
    Score,
    baseline_configs,
    choose_ranker,
    meetings,
    met_before,
    met_in_model,
)
from tests.engine.worlds import dense, groups, interactions, misleading_history


def _pairs(m):
    coo = m.tocoo()
    return sorted((int(i), int(j)) for i, j in zip(coo.row, coo.col, strict=True) if i < j)


def test_meetings_count_expected_face_time_hand_checked():
    # 0-1: 60 s as a pair (all of it face time) -> meet.
    # 2..5: two 100 s groups of four: 100 * 2/4 = 50 s each, 100 s together -> meet.
    # 6..9: one such group: 50 s -> not yet.
    rows = [(0, 0, 60, 0), (1, 0, 60, 0)]
    rows += [(p, 1, 100, 0) for p in (2, 3, 4, 5)] + [(p, 2, 100, 200) for p in (2, 3, 4, 5)]
    rows += [(p, 3, 100, 0) for p in (6, 7, 8, 9)]
    x = interactions(rows, 10)
    expected = [(0, 1)] + [(a, b) for a in range(2, 6) for b in range(a + 1, 6)]
    assert _pairs(meetings(x)) == expected


def test_met_before_means_they_more_likely_than_not_talked():
    # a pair's own session: certain; a group of four: 2/4 = even odds, counted; one of five: 2/5,
    # not; two of five: 1 - 0.6 ** 2 = 0.64, counted.
    rows = [(0, 0, 20, 0), (1, 0, 20, 0)]
    rows += [(p, 1, 20, 0) for p in (2, 3, 4, 5)]
    rows += [(p, 2, 20, 0) for p in (6, 7, 8, 9, 10)]
    rows += [(p, 3, 20, 0) for p in (11, 12, 13, 14, 15)] + [(p, 4, 20, 60) for p in (11, 12, 13, 14, 15)]
    met = _pairs(met_before(interactions(rows, 16)))
    assert (0, 1) in met and (2, 5) in met and (11, 15) in met
    assert not any(a in range(6, 11) for a, _ in met)
    assert len(met) == 1 + 6 + 10


@pytest.mark.parametrize("world", [misleading_history, groups, dense])
def test_met_in_model_reads_met_before_from_the_fitted_model_row_by_row(world):
    x = world()
    model = fit(x, EngineConfig())
    everyone = met_before(x)
    for a in range(x.n_attendees):
        assert met_in_model(model, a).tolist() == sorted(everyone[a].indices.tolist())
    assert everyone.nnz > 0


def test_met_in_model_follows_the_model_s_real_time_rooms_and_skips_crowds():
    # 0 and 1 alone together: met. 2 in a context of TRUTH_MAX_CONTEXT + 1 with everyone: nobody.
    n = R.TRUTH_MAX_CONTEXT + 2
    rows = [(0, 0, 60, 0), (1, 0, 60, 0)] + [(p, 1, 60, 0) for p in range(1, n)]
    model = fit(interactions(rows, n), EngineConfig())
    assert met_in_model(model, 0).tolist() == [1]
    assert met_in_model(model, 2).tolist() == []
    assert met_in_model(model, n + 5).tolist() == []  # joined after the fit: nobody yet


def test_an_event_whose_own_split_favours_popularity_serves_popularity():
    choice = choose_ranker(misleading_history(), EngineConfig())

    assert (choice.kind, choice.name) == ("baseline", POPULARITY_PARTNERS)
    assert {k: getattr(choice.config, k) for k in ("w_direct", "w_two_hop", "w_repeat", "w_social")} == {
        "w_direct": 0.0,
        "w_two_hop": 0.0,
        "w_repeat": 0.0,
        "w_social": 1.0,
    }
    popular = choice.validation[POPULARITY_PARTNERS]
    assert popular.new_r > 0.95  # the hubs not met yet are exactly whom they meet
    # Nothing does better; the learned lists tie, and a tie goes to the simplest list.
    assert all(s.all_p <= popular.all_p and s.new_r <= popular.new_r for s in choice.validation.values())
    assert choice.reason.startswith("No learned ranking beat the obvious lists")


def test_an_event_of_stable_groups_learns_to_rank_by_repeat_meetings():
    choice = choose_ranker(groups(), EngineConfig())

    assert choice.kind == "learned"
    learned = choice.validation[choice.name]
    best = max(choice.validation[b].all_p for b in BASELINES)
    assert learned.all_p >= best
    assert choice.reason == LEARNED_WINS.format(
        name=choice.name,
        all_p=learned.all_p,
        base_all=best,
        new_r=learned.new_r,
        base_new=max(choice.validation[b].new_r for b in BASELINES),
    )
    # the explanation of the weights: shares of the score, largest first, summing to one
    assert abs(sum(choice.importance.values()) - 1.0) < 0.02
    assert list(choice.importance.values()) == sorted(choice.importance.values(), reverse=True)
    # every scored candidate's settings come with the choice (what benchmarks/contract_ceiling.py refits)
    assert set(choice.candidates) == set(choice.validation)
    assert choice.candidates[choice.name] == choice.config
    assert choice.candidates[POPULARITY_TIME] == baseline_configs(EngineConfig())[POPULARITY_TIME]
    # a fitted model with these weights ranks a group member first for everyone
    model = fit(groups(), choice.config)
    assert all(int(model.neighbours(a)[0][0]) // 10 == a // 10 for a in range(60))


def test_the_choice_and_its_weights_are_the_same_for_a_seed():
    x = groups()
    first, again = choose_ranker(x, EngineConfig(), seed=7), choose_ranker(x, EngineConfig(), seed=7)
    assert first.config == again.config
    assert first.validation == again.validation
    assert first.to_dict() == again.to_dict()


def test_an_event_too_small_to_learn_from_serves_its_configured_settings():
    x = interactions([(0, 0, 60, 0), (1, 0, 60, 0), (1, 1, 60, 100), (2, 1, 60, 100)] * 3, 3)
    choice = choose_ranker(x, FACE_TO_FACE)
    assert (choice.kind, choice.config) == ("prior", FACE_TO_FACE)
    assert choice.reason.startswith("Too little later activity to learn from")


def test_fixed_settings_serve_as_configured_and_are_still_scored_beside_the_baselines():
    choice = choose_ranker(groups(), EngineConfig(), learn=False)
    assert (choice.kind, choice.config) == ("fixed", EngineConfig())
    assert set(choice.validation) == {*BASELINES, "configured"}
    assert set(choice.candidates) == set(choice.validation)
    assert choice.candidates["configured"] == EngineConfig()


def _score(all_p, new_r, n=100):
    return Score(all_p=all_p, new_r=new_r, n_all=n, n_new=n)


@pytest.mark.parametrize(
    ("learned", "expected"),
    [
        (_score(0.30, 0.20), "learned (rooms)"),  # better on both
        (_score(0.203, 0.203), POPULARITY_TIME),  # better, but by less than the margin
        (_score(0.40, 0.18), POPULARITY_TIME),  # much better on "all", worse than tolerated on "new"
        (_score(0.19, 0.40), "learned (rooms)"),  # within tolerance on "all", far better on "new"
        (_score(0.18, 0.40), POPULARITY_TIME),  # beyond tolerance on "all"
        (_score(0.25, 0.10, n=10), "learned (rooms)"),  # "new" on too few attendees to count: "all" decides
    ],
)
def test_the_decision_prefers_the_obvious_list_unless_the_learned_one_wins_on_both(learned, expected):
    table = {
        POPULARITY_PARTNERS: _score(0.15, 0.20),
        POPULARITY_TIME: _score(0.20, 0.19),
        REPEAT_POPULARITY: _score(0.18, 0.19),
        "learned (rooms)": learned,
    }
    if learned.n_new < R.MIN_TARGETS:  # a target with too few attendees is left out of the comparison
        table = {k: dataclasses.replace(v, n_all=100, n_new=learned.n_new) for k, v in table.items()}
    assert R._decide(table)[0] == expected


def test_importance_shares_name_the_features():
    shares = R.importance_shares(np.array([0.1, -0.3, 0.0, 0.5, 0.1]))
    assert shares == {
        "sociability": 0.5,
        "people met in common": 0.3,
        "time together": 0.1,
        "time among people": 0.1,
        "repeat meetings": 0.0,
    }
    assert math.isclose(sum(shares.values()), 1.0)
