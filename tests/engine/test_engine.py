"""Hand-checked engine behaviour (plain pytest, no Django)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommendations.engine import EngineConfig, InteractionArrays, Model, fit
from recommendations.engine import _kernels as K

LN2 = math.log(2.0)


def _x(att, ctx, w, n_att, n_ctx, start=None, end=None) -> InteractionArrays:
    return InteractionArrays(
        np.asarray(att, dtype=np.int64),
        np.asarray(ctx, dtype=np.int64),
        np.asarray(w, dtype=np.float64),
        n_att,
        n_ctx,
        None if start is None else np.asarray(start, dtype=np.float64),
        None if end is None else np.asarray(end, dtype=np.float64),
    )


# context 0: everyone (0, 1, 2); context 1: only 0 and 1.  Dwell 60 s -> v = log1p(1) = ln 2.
EVERYONE = _x([0, 1, 2, 0, 1], [0, 0, 0, 1, 1], [60.0] * 5, 3, 2)


def test_popularity_discount_lowers_context_everyone_joined():
    m = fit(EVERYONE, EngineConfig(popularity_discount=1.0, same_time_bonus=0.0, candidate_pool=4))
    # idf = (size - 1) ** -alpha: the 3-person context weighs 1/2, the 2-person one 1
    assert m.idf.tolist() == [0.5, 1.0]
    assert m.n1_i[0, :2].tolist() == [1, 2]
    assert m.n1_s[0, 0] == pytest.approx(1.5 * LN2**2, abs=1e-12)
    assert m.n1_s[0, 1] == pytest.approx(0.5 * LN2**2, abs=1e-12)


def test_popularity_discount_zero_keeps_full_weight():
    m = fit(EVERYONE, EngineConfig(popularity_discount=0.0, same_time_bonus=0.0, candidate_pool=4))
    assert m.idf.tolist() == [1.0, 1.0]
    assert m.n1_s[0, 0] == pytest.approx(2.0 * LN2**2, abs=1e-12)
    assert m.n1_s[0, 1] == pytest.approx(1.0 * LN2**2, abs=1e-12)


def test_min_co_count_two_filters_single_shared_context():
    m = fit(EVERYONE, EngineConfig(min_co_count=2, same_time_bonus=0.0, candidate_pool=4))
    assert m.n1_i[0].tolist() == [1, -1, -1, -1]  # 0-2 share only context 0
    assert m.n1_c[0, 0] == 2
    assert m.deg.tolist() == [1, 1, 0]


def test_context_cap_excludes_contexts_larger_than_cap():
    m = fit(EVERYONE, EngineConfig(context_cap=2, same_time_bonus=0.0, candidate_pool=4))
    assert m.idf.tolist() == [0.0, 1.0]
    assert m.n1_i[2].tolist() == [-1, -1, -1, -1]
    assert m.n1_s[0, 0] == pytest.approx(LN2**2, abs=1e-12)


def test_same_time_overlap_beats_different_time_sharing():
    # one room; 0 = [0,100], 1 = [50,150] (half overlap), 2 = [1000,1100] (same room, other time)
    x = _x([0, 1, 2], [0, 0, 0], [100.0] * 3, 3, 1, [0, 50, 1000], [100, 150, 1100])
    m = fit(x, EngineConfig(same_time_bonus=1.0, candidate_pool=4))
    v2 = math.log1p(100.0 / 60.0) ** 2
    assert m.n1_i[0, :2].tolist() == [1, 2]
    assert m.n1_s[0, 0] == pytest.approx(0.5 * v2 * 1.5, abs=1e-12)  # idf 1/2, overlap 0.5
    assert m.n1_s[0, 1] == pytest.approx(0.5 * v2 * 1.0, abs=1e-12)  # no overlap: no bonus


def test_same_time_bonus_zero_ties_by_lower_index():
    x = _x([0, 2, 1], [0, 0, 0], [100.0] * 3, 3, 1, [0, 50, 1000], [100, 150, 1100])
    m = fit(x, EngineConfig(same_time_bonus=0.0, candidate_pool=4))
    assert m.n1_i[0, :2].tolist() == [1, 2]
    assert m.n1_s[0, 0] == m.n1_s[0, 1]


def _random_event(seed: int, n_att: int = 40, n_ctx: int = 10, n: int = 200) -> InteractionArrays:
    rng = np.random.default_rng(seed)
    att = rng.integers(0, n_att, n)
    ctx = rng.integers(0, n_ctx, n)
    start = rng.integers(0, 5000, n).astype(np.float64)
    w = rng.integers(10, 900, n).astype(np.float64)
    return _x(att, ctx, w, n_att, n_ctx, start, start + w)


def _slice(x: InteractionArrays, sl: slice, n_att: int, n_ctx: int) -> InteractionArrays:
    return _x(x.attendee[sl], x.context[sl], x.weight[sl], n_att, n_ctx, x.start[sl], x.end[sl])


CFG = EngineConfig(
    context_cap=12,
    recency_half_life=3600.0,
    candidate_pool=10,
    two_hop_fanout=5,
    top_k=6,
    w_direct=1.0,
    w_two_hop=0.7,
    w_repeat=0.3,
    w_social=0.2,
)


def test_explain_features_sum_to_table_score():
    m = fit(_random_event(1), CFG)
    checked = 0
    for a in range(m.n_attendees):
        for b, s in zip(*m.neighbours(a), strict=True):
            e = m.explain(a, int(b))
            assert sum(e.features.values()) == pytest.approx(s, abs=1e-9)
            assert e.score == pytest.approx(s, abs=1e-9)
            row = m.n1_i[a].tolist()
            if int(b) in row:  # raw co-presence = sum of per-context contributions = stored stage-1 score
                assert e.direct_raw == pytest.approx(m.n1_s[a, row.index(int(b))], rel=1e-12)
                assert e.shared_contexts == m.n1_c[a, row.index(int(b))]
            checked += 1
    assert checked == m.n_attendees * CFG.top_k


def _row_features_loop(m: Model, a: int):
    """The definition of the stage-2 features, as the kernel computes them, one entry at a time:
    the reference the vectorised ``Model.row_features`` must equal bit for bit."""
    cfg = m.config
    k1, f = cfg.candidate_pool, min(cfg.two_hop_fanout, cfg.candidate_pool)
    n1i, n1s = m.n1_i, m.n1_s
    direct, rep, two, via = {}, {}, {}, {}
    for j in range(k1):
        b = int(n1i[a, j])
        if b < 0:
            break
        direct[b], rep[b] = float(n1s[a, j]), math.log1p(float(m.n1_c[a, j]))
    tot_a = 0.0
    for j in range(f):
        if n1i[a, j] < 0:
            break
        tot_a += float(n1s[a, j])
    if tot_a > 0.0:
        for j in range(f):
            p = int(n1i[a, j])
            if p < 0:
                break
            tot_p = 0.0
            for q in range(f):
                if n1i[p, q] < 0:
                    break
                tot_p += float(n1s[p, q])
            if tot_p <= 0.0:
                continue
            for q in range(f):
                b = int(n1i[p, q])
                if b < 0:
                    break
                if b != a:
                    c = float(n1s[a, j]) / tot_a * (float(n1s[p, q]) / tot_p)
                    two[b] = two.get(b, 0.0) + c
                    via.setdefault(b, []).append((p, c))
    return direct, two, via, rep


@pytest.mark.parametrize(
    "cfg",
    [CFG, EngineConfig(), EngineConfig(min_co_count=2, candidate_pool=8, two_hop_fanout=20, direct_transform="log")],
)
def test_row_features_and_explain_agree_with_stage_1_after_an_update(cfg):
    m = fit(_random_event(7, n_att=60, n_ctx=14, n=400), cfg)
    m.update(_random_event(8, n_att=60, n_ctx=14, n=30))  # rows after a real-time update too
    for a in range(m.n_attendees):
        direct, two, via, rep = m.row_features(a)
        ref_direct, ref_two, ref_via, ref_rep = _row_features_loop(m, a)
        assert (direct, two, rep) == (ref_direct, ref_two, ref_rep)  # exact, not approximate
        # strongest first, ties in the order the kernel added them (Python's sort is stable)
        assert via.get_many(list(ref_two)) == {b: sorted(p, key=lambda t: -t[1]) for b, p in ref_via.items()}
        assert via.get_many([a, -5]) == {}
        for j, b in enumerate(m.n1_i[a].tolist()):  # explain's shared contexts add up to stage 1
            if b >= 0:
                e = m.explain(a, b, (direct, two, via, rep))
                assert e.direct_raw == pytest.approx(m.n1_s[a, j], rel=1e-12)
                assert e.shared_contexts == m.n1_c[a, j]
        # a whole row at once says what its pairs say one at a time; `presence` is each one's stay
        listed = [b for b in m.tab_i[a].tolist() if b >= 0]
        together = m.explain_row(a, listed)
        assert together == [m.explain(a, b) for b in listed]
        for b, e in zip(listed, together, strict=True):
            assert len(e.presence) == len(e.contexts) == e.shared_contexts
            for (c, _), (w_a, w_b, overlap) in zip(e.contexts, e.presence, strict=True):
                pa, pb = m.A.find(a, c), m.A.find(b, c)
                assert (w_a, w_b) == (m.A.w[pa], m.A.w[pb])
                assert overlap == K._overlap.py_func(m.A.s[pa], m.A.e[pa], m.A.s[pb], m.A.e[pb])


def test_neighbours_table_equals_on_the_fly_scoring():
    m = fit(_random_event(2), CFG)
    for a in range(m.n_attendees):
        s = m.score_row(a)
        s[a] = -np.inf
        order = np.argsort(-s, kind="stable")[: CFG.top_k]
        assert m.tab_i[a].tolist() == order.tolist()
        np.testing.assert_allclose(m.tab_s[a], s[order], rtol=0, atol=1e-12)


def test_neighbours_exclude_removes_already_met():
    m = fit(_random_event(3), CFG)
    top, _ = m.neighbours(0)
    idx, _ = m.neighbours(0, k=5, exclude=top[:3].tolist())
    assert not set(idx.tolist()) & set(top[:3].tolist())
    assert idx.tolist() == [b for b in m.neighbours(0, k=8, exclude=[])[0].tolist() if b not in top[:3]][:5]


def _concat(a: InteractionArrays, b: InteractionArrays, n_att: int, n_ctx: int) -> InteractionArrays:
    return _x(
        np.r_[a.attendee, b.attendee],
        np.r_[a.context, b.context],
        np.r_[a.weight, b.weight],
        n_att,
        n_ctx,
        np.r_[a.start, b.start],
        np.r_[a.end, b.end],
    )


def test_update_incremental_equals_full_refit():
    full = _random_event(4, n_att=40, n_ctx=10, n=220)
    n_att, n_ctx = 45, 12  # the update brings new attendees and new contexts
    seen = _slice(full, slice(0, 200), 40, 10)
    m = fit(seen, CFG)
    extra = _x(
        np.r_[full.attendee[200:], [40, 44, 41]],
        np.r_[full.context[200:], [10, 11, 3]],
        np.r_[full.weight[200:], [300.0, 120.0, 60.0]],
        n_att,
        n_ctx,
        np.r_[full.start[200:], [100.0, 200.0, 300.0]],
        np.r_[full.end[200:], [400.0, 320.0, 360.0]],
    )
    for j in range(extra.attendee.shape[0]):  # one interaction at a time, like real time
        one = _slice(extra, slice(j, j + 1), n_att, n_ctx)
        rows = m.update(one).tolist()
        seen = _concat(seen, one, n_att, n_ctx)
        ref = fit(seen, CFG, reference_time=m.t_ref)
        assert int(one.attendee[0]) in rows
        assert m.cap == ref.cap == 12
        np.testing.assert_array_equal(m.idf, ref.idf)
        # stage 1 (co-presence lists) and degrees are exact for every row
        assert m.n1_i.tolist() == ref.n1_i.tolist()
        np.testing.assert_allclose(m.n1_s, ref.n1_s, rtol=1e-12, atol=0)
        assert m.deg.tolist() == ref.deg.tolist()
        # the final table is exact for the rows this update recomputed
        assert m.tab_i[rows].tolist() == ref.tab_i[rows].tolist()
        np.testing.assert_allclose(m.tab_s[rows], ref.tab_s[rows], rtol=1e-12, atol=0)


ACTIVE = EngineConfig(**(CFG.to_dict() | {"context_cap": 40, "w_social": 0.3, "w_activity": 0.5}))


def test_activity_is_time_in_company_weighted_by_the_log_of_group_size_hand_checked():
    # a and b: 120 s in a pair; a, c, d: 60 s in a three; e alone (a context of one counts nothing)
    x = _x([0, 1, 0, 2, 3, 4], [0, 0, 1, 1, 1, 2], [120.0, 120.0, 60.0, 60.0, 60.0, 600.0], 5, 3)
    m = fit(x, EngineConfig(context_cap=10, w_social=0.0, w_activity=1.0))
    expected = [
        np.log1p(2 * np.log(2) + np.log(3)),
        np.log1p(2 * np.log(2)),
        np.log1p(np.log(3)),
        np.log1p(np.log(3)),
        0,
    ]
    np.testing.assert_allclose(m.activity, expected, rtol=1e-12)
    np.testing.assert_allclose(m.prior, expected, rtol=1e-12)  # the prior is the weighted sum
    assert m.company_seconds(np.arange(5)).tolist() == [180.0, 120.0, 60.0, 60.0, 0.0]
    # ranked by the prior alone, the list is "the most active people"
    assert m.neighbours(4)[0].tolist()[:4] == [0, 1, 2, 3]


def test_single_updates_keep_activity_the_prior_and_the_fill_list_exact():
    """The prior (sociability and activity, weighted) of every row equals a full refit after each
    update: a touched context changes the activity of all its members, who are all recomputed."""
    full = _random_event(9, n_att=60, n_ctx=30, n=700)
    m = fit(_slice(full, slice(0, 400), 60, 30), ACTIVE)
    seen = _slice(full, slice(0, 400), 60, 30)
    for j in range(400, 520):
        one = _slice(full, slice(j, j + 1), 60, 30)
        rows = m.update(one).tolist()
        seen = _concat(seen, one, 60, 30)
        ref = fit(seen, ACTIVE, reference_time=m.t_ref)
        np.testing.assert_allclose(m.activity, ref.activity, rtol=1e-12, atol=0)
        np.testing.assert_allclose(m.prior, ref.prior, rtol=1e-12, atol=0)
        assert m.pop.tolist() == ref.pop.tolist()
        assert m.tab_i[rows].tolist() == ref.tab_i[rows].tolist()
        np.testing.assert_allclose(m.tab_s[rows], ref.tab_s[rows], rtol=1e-12, atol=0)


def test_update_batch_equals_full_refit_for_recomputed_rows():
    full = _random_event(6, n_att=40, n_ctx=10, n=220)
    m = fit(_slice(full, slice(0, 180), 40, 10), CFG)
    rows = m.update(_slice(full, slice(180, 220), 40, 10)).tolist()
    ref = fit(full, CFG, reference_time=m.t_ref)
    assert m.n1_i.tolist() == ref.n1_i.tolist()
    assert m.tab_i[rows].tolist() == ref.tab_i[rows].tolist()
    np.testing.assert_allclose(m.tab_s[rows], ref.tab_s[rows], rtol=1e-12, atol=0)


def test_update_context_crossing_cap_recomputes_its_members():
    x = _x([0, 1, 2, 0, 3], [0, 0, 0, 1, 1], [60.0] * 5, 5, 2)
    cfg = EngineConfig(context_cap=3, same_time_bonus=0.0, candidate_pool=4, top_k=3)
    m = fit(x, cfg)
    assert m.n1_i[1, 0] == 0
    rows = m.update(_x([4], [0], [60.0], 5, 2))  # context 0 grows to 4 > cap
    assert rows.tolist() == [0, 1, 2, 4]
    assert m.idf[0] == 0.0
    assert m.n1_i[1].tolist() == [-1, -1, -1, -1]
    ref = fit(_x([0, 1, 2, 0, 3, 4], [0, 0, 0, 1, 1, 0], [60.0] * 6, 5, 2), cfg, reference_time=m.t_ref)
    assert m.n1_i.tolist() == ref.n1_i.tolist()
    assert m.tab_i[rows].tolist() == ref.tab_i[rows].tolist()


def test_save_load_round_trip(tmp_path):
    m = fit(_random_event(5), CFG)
    p = tmp_path / "model.npz"
    m.save(p)
    m2 = Model.load(p)
    assert m2.config == m.config and m2.cap == m.cap and m2.t_ref == m.t_ref
    for name in ("n1_i", "n1_s", "n1_c", "deg", "tab_i", "tab_s", "idf", "pop", "social", "activity", "prior"):
        np.testing.assert_array_equal(getattr(m2, name), getattr(m, name))
    assert m2.explain(0, int(m.tab_i[0, 0])) == m.explain(0, int(m.tab_i[0, 0]))
    upd = _x([3], [2], [500.0], 40, 10, [10.0], [510.0])
    assert m2.update(upd).tolist() == m.update(upd).tolist()
    np.testing.assert_array_equal(m2.tab_i, m.tab_i)
    np.testing.assert_array_equal(m2.tab_s, m.tab_s)


def test_a_large_update_takes_the_parallel_kernels_and_stays_exact(monkeypatch):
    """A batch that recomputes at least `Model.BULK_ROWS` rows (a worker catching up) computes them
    all with the fit's parallel kernels; every row then equals a full refit, as on the other path."""
    monkeypatch.setattr(Model, "BULK_ROWS", 20)
    cfg = EngineConfig(**(CFG.to_dict() | {"context_cap": 40}))
    full = _random_event(9, n_att=60, n_ctx=30, n=700)
    m = fit(_slice(full, slice(0, 400), 60, 30), cfg)
    rows = m.update(_slice(full, slice(400, 700), 60, 30))
    assert m.last_update == {"full": rows.size, "incremental": 0, "fallback": 0} and rows.size >= 20
    ref = fit(full, cfg, reference_time=m.t_ref)
    assert m.n1_i.tolist() == ref.n1_i.tolist()
    np.testing.assert_allclose(m.n1_s, ref.n1_s, rtol=1e-12, atol=0)
    assert m.deg.tolist() == ref.deg.tolist()
    assert m.pop.tolist() == ref.pop.tolist()
    assert m.tab_i.tolist() == ref.tab_i.tolist()
    np.testing.assert_allclose(m.tab_s, ref.tab_s, rtol=1e-12, atol=0)


def test_duplicate_rows_merge_weights_and_interval():
    x = _x([0, 0, 1], [0, 0, 0], [30.0, 30.0, 60.0], 2, 1, [10.0, 100.0, 0.0], [40.0, 130.0, 60.0])
    m = fit(x, EngineConfig(same_time_bonus=0.0))
    y = m.interactions()
    assert y.attendee.tolist() == [0, 1]
    assert y.weight.tolist() == [60.0, 60.0]
    assert y.start.tolist() == [10.0, 0.0] and y.end.tolist() == [130.0, 60.0]
    assert m.n1_s[0, 0] == pytest.approx(LN2**2, abs=1e-12)


@pytest.mark.parametrize(
    "cfg",
    [
        EngineConfig(**(CFG.to_dict() | {"context_cap": 40})),
        EngineConfig(context_cap=30, candidate_pool=6, two_hop_fanout=4, top_k=5, min_co_count=2),
        EngineConfig(context_cap=30, candidate_pool=6, two_hop_fanout=4, top_k=5, popularity_discount=0.0),
    ],
    ids=["cap-recency", "min-co-2", "no-discount"],
)
def test_update_members_incrementally_and_stay_exact(cfg):
    """Members of a touched context are updated from their stored lists (the guard proves the
    result exact, or the row is recomputed): after every single update, stage 1 and the degrees of
    *every* row equal a full refit, and most member rows took the incremental path."""
    full = _random_event(9, n_att=60, n_ctx=30, n=700)  # busy contexts (~20 members), some cross the cap
    m = fit(_slice(full, slice(0, 400), 60, 30), cfg)
    seen = _slice(full, slice(0, 400), 60, 30)
    used = {"incremental": 0, "fallback": 0}
    for j in range(400, 700):
        one = _slice(full, slice(j, j + 1), 60, 30)
        m.update(one)
        for key in used:
            used[key] += m.last_update[key]
        seen = _concat(seen, one, 60, 30)
        ref = fit(seen, cfg, reference_time=m.t_ref)
        assert m.n1_i.tolist() == ref.n1_i.tolist()
        np.testing.assert_allclose(m.n1_s, ref.n1_s, rtol=1e-12, atol=0)
        assert m.n1_c.tolist() == ref.n1_c.tolist()
        assert m.deg.tolist() == ref.deg.tolist()
    assert used["incremental"] > 5 * used["fallback"]  # the cheap path is the common one
    if cfg.popularity_discount > 0:  # idf falls as contexts grow: some rows cannot be proven, and recompute
        assert used["fallback"] > 0
    else:  # idf is constant: stored partners never fall, the guard always holds
        assert used["fallback"] == 0


def test_warm_up_loads_every_kernel_the_live_path_uses():
    """In a fresh process (kernels are loaded lazily), `warm_up` leaves none for the first live
    interaction to load."""
    code = (
        "from recommendations.engine import _kernels as K, warm_up\n"
        "warm_up()\n"
        "names = ['stage1', 'stage2', 'stage1_serial', 'stage2_serial', 'member_rows', 'shared_contexts', 'activity']\n"
        "print([n for n in names if not getattr(K, n).signatures])\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
