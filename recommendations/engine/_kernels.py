"""Compiled kernels (numba).  Row-wise sparse "A·Aᵀ with top-k" restricted to capped contexts.

WHY a hand kernel instead of ``X @ X.T``: (1) the same-time overlap factor depends on the
pair's intervals inside each context, which a plain sparse product cannot express; (2) nearly
all multiply-adds of ``X @ X.T`` happen in the few huge contexts (keynotes), which the cap
skips entirely (idf = 0) instead of materialising; (3) a dense accumulator per thread plus a
bounded heap keeps memory O(n_threads * n_attendees + n_rows * k).

Adjacency is a "blocked" CSR: group g occupies ``idx[ptr[g] : ptr[g] + length[g]]`` with
members sorted ascending; blocks can be relocated on growth (real-time updates).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _overlap(sa: float, ea: float, sb: float, eb: float) -> float:
    lo = sa if sa > sb else sb
    hi = ea if ea < eb else eb
    la = ea - sa
    lb = eb - sb
    d = la if la < lb else lb
    if d <= 0.0:
        return 1.0 if hi >= lo else 0.0
    ov = hi - lo
    if ov <= 0.0:
        return 0.0
    r = ov / d
    return 1.0 if r > 1.0 else r


@njit(cache=True, inline="always")
def _heap_push(hs, hi, size, k, s, j):
    """Min-heap of (score, -index) keeping the k best; ties -> lower index wins."""
    if size < k:
        pos = size
        size += 1
        hs[pos] = s
        hi[pos] = j
        while pos > 0:
            par = (pos - 1) // 2
            if hs[par] > hs[pos] or (hs[par] == hs[pos] and hi[par] < hi[pos]):
                hs[par], hs[pos] = hs[pos], hs[par]
                hi[par], hi[pos] = hi[pos], hi[par]
                pos = par
            else:
                break
        return size
    # replace root if better
    if s > hs[0] or (s == hs[0] and j < hi[0]):
        hs[0] = s
        hi[0] = j
        pos = 0
        while True:
            l = 2 * pos + 1
            r = l + 1
            m = pos
            if l < size and (hs[l] < hs[m] or (hs[l] == hs[m] and hi[l] > hi[m])):
                m = l
            if r < size and (hs[r] < hs[m] or (hs[r] == hs[m] and hi[r] > hi[m])):
                m = r
            if m == pos:
                break
            hs[m], hs[pos] = hs[pos], hs[m]
            hi[m], hi[pos] = hi[pos], hi[m]
            pos = m
    return size


@njit(cache=True)
def _heap_sorted(hs, hi, size, out_s, out_i):
    """Drain the min-heap (worst first) into out[size-1 .. 0]: best first, ties by lower index.
    In place, no allocation (WHY: a per-row argsort dominated stage 1 for k >= 50)."""
    n = size
    while n > 0:
        out_s[n - 1] = hs[0]
        out_i[n - 1] = hi[0]
        n -= 1
        hs[0] = hs[n]
        hi[0] = hi[n]
        pos = 0
        while True:
            l = 2 * pos + 1
            r = l + 1
            m = pos
            if l < n and (hs[l] < hs[m] or (hs[l] == hs[m] and hi[l] > hi[m])):
                m = l
            if r < n and (hs[r] < hs[m] or (hs[r] == hs[m] and hi[r] > hi[m])):
                m = r
            if m == pos:
                break
            hs[m], hs[pos] = hs[pos], hs[m]
            hi[m], hi[pos] = hi[pos], hi[m]
            pos = m


@njit(cache=True)
def _stage1_row(a, a_ptr, a_len, a_idx, a_v, a_s, a_e, c_ptr, c_len, c_idx, c_v, c_s, c_e,
                idf, bonus, min_co, k, acc, cnt, touched, hs, hi, out_i, out_s, out_c):
    nt = 0
    p0 = a_ptr[a]
    for q in range(p0, p0 + a_len[a]):
        c = a_idx[q]
        w = idf[c]
        if w == 0.0:
            continue
        va = a_v[q] * w
        sa = a_s[q]
        ea = a_e[q]
        r0 = c_ptr[c]
        for r in range(r0, r0 + c_len[c]):
            b = c_idx[r]
            if b == a:
                continue
            f = 1.0
            if bonus != 0.0:
                f = 1.0 + bonus * _overlap(sa, ea, c_s[r], c_e[r])
            if cnt[b] == 0:
                touched[nt] = b
                nt += 1
            cnt[b] += 1
            acc[b] += va * c_v[r] * f
    size = 0
    deg = 0
    for t in range(nt):
        b = touched[t]
        if cnt[b] >= min_co:
            deg += 1
            x = acc[b]
            # fast reject without a call: most partners lose against a full heap's root
            if size == k and (x < hs[0] or (x == hs[0] and b > hi[0])):
                continue
            size = _heap_push(hs, hi, size, k, x, b)
    tmp_s = np.empty(size, dtype=np.float64)
    tmp_i = np.empty(size, dtype=np.int64)
    _heap_sorted(hs, hi, size, tmp_s, tmp_i)
    for t in range(k):
        if t < size:
            out_i[t] = tmp_i[t]
            out_s[t] = tmp_s[t]
            out_c[t] = cnt[tmp_i[t]]
        else:
            out_i[t] = -1
            out_s[t] = 0.0
            out_c[t] = 0
    for t in range(nt):
        b = touched[t]
        acc[b] = 0.0
        cnt[b] = 0
    return deg


@njit(cache=True, parallel=True)
def stage1(rows, a_ptr, a_len, a_idx, a_v, a_s, a_e, c_ptr, c_len, c_idx, c_v, c_s, c_e,
           idf, bonus, min_co, k, s_acc, s_cnt, s_touched, out_i, out_s, out_c, out_deg):
    """Top-k co-presence partners for each attendee in ``rows`` (written at out[j] for rows[j]).

    One chunk per scratch row (``s_*`` have shape (n_chunks, n_attendees), all-zero on entry and
    left all-zero); rows are interleaved over chunks for load balance.  WHY persistent scratch:
    a real-time update recomputes a few hundred rows, and zeroing fresh n-sized buffers per call
    would cost as much as the arithmetic."""
    m = rows.shape[0]
    n_chunks = s_acc.shape[0]
    for ch in prange(n_chunks):
        hs = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for j in range(ch, m, n_chunks):
            out_deg[j] = _stage1_row(rows[j], a_ptr, a_len, a_idx, a_v, a_s, a_e, c_ptr, c_len, c_idx,
                                     c_v, c_s, c_e, idf, bonus, min_co, k, s_acc[ch], s_cnt[ch], s_touched[ch],
                                     hs, hi, out_i[j], out_s[j], out_c[j])


@njit(cache=True, inline="always")
def norm_direct(d, dmax, log_mode):
    if dmax <= 0.0:
        return 0.0
    if log_mode:
        return np.log1p(d) / np.log1p(dmax)
    return d / dmax


@njit(cache=True)
def _stage2_row(a, n1_i, n1_s, n1_c, fanout, pop, social, w_d, w_2, w_c, w_s, log_mode, k, acc_d, acc_2, acc_c, mark,
                touched,
                hs, hi, out_i, out_s):
    k1 = n1_i.shape[1]
    nt = 0
    dmax = n1_s[a, 0] if n1_i[a, 0] >= 0 else 0.0
    for j in range(k1):
        b = n1_i[a, j]
        if b < 0:
            break
        if mark[b] == 0:
            mark[b] = 1
            touched[nt] = b
            nt += 1
        acc_d[b] = n1_s[a, j]
        acc_c[b] = np.log1p(float(n1_c[a, j]))
    # two-hop random walk over the top ``fanout`` partners
    tot_a = 0.0
    for j in range(min(fanout, k1)):
        if n1_i[a, j] < 0:
            break
        tot_a += n1_s[a, j]
    if tot_a > 0.0:
        for j in range(min(fanout, k1)):
            m = n1_i[a, j]
            if m < 0:
                break
            pam = n1_s[a, j] / tot_a
            tot_m = 0.0
            for q in range(min(fanout, k1)):
                if n1_i[m, q] < 0:
                    break
                tot_m += n1_s[m, q]
            if tot_m <= 0.0:
                continue
            for q in range(min(fanout, k1)):
                b = n1_i[m, q]
                if b < 0:
                    break
                if b == a:
                    continue
                if mark[b] == 0:
                    mark[b] = 1
                    touched[nt] = b
                    nt += 1
                acc_2[b] += pam * (n1_s[m, q] / tot_m)
    tmax = 0.0
    for t in range(nt):
        b = touched[t]
        if acc_2[b] > tmax:
            tmax = acc_2[b]
    size = 0
    for t in range(nt):
        b = touched[t]
        x1 = norm_direct(acc_d[b], dmax, log_mode)
        x2 = acc_2[b] / tmax if tmax > 0.0 else 0.0
        s = w_d * x1 + w_2 * x2 + w_c * acc_c[b] + w_s * social[b]
        if size == k and (s < hs[0] or (s == hs[0] and b > hi[0])):
            continue
        size = _heap_push(hs, hi, size, k, s, b)
    # fill with the most sociable non-candidates (their score is w_s * social only)
    added = 0
    for t in range(pop.shape[0]):
        if added >= k:
            break
        b = pop[t]
        if b == a or mark[b] != 0:
            continue
        size = _heap_push(hs, hi, size, k, w_s * social[b], b)
        added += 1
    tmp_s = np.empty(size, dtype=np.float64)
    tmp_i = np.empty(size, dtype=np.int64)
    _heap_sorted(hs, hi, size, tmp_s, tmp_i)
    for t in range(k):
        if t < size:
            out_i[t] = tmp_i[t]
            out_s[t] = tmp_s[t]
        else:
            out_i[t] = -1
            out_s[t] = -np.inf
    for t in range(nt):
        b = touched[t]
        acc_d[b] = 0.0
        acc_c[b] = 0.0
        acc_2[b] = 0.0
        mark[b] = 0


@njit(cache=True, parallel=True)
def stage2(rows, n1_i, n1_s, n1_c, fanout, pop, social, w_d, w_2, w_c, w_s, log_mode, k, s_d, s_c, s_2, s_mark,
           s_touched, out_i, out_s):
    """Final top-k for each attendee in ``rows``; scratch as in :func:`stage1`."""
    m = rows.shape[0]
    n_chunks = s_d.shape[0]
    for ch in prange(n_chunks):
        hs = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for j in range(ch, m, n_chunks):
            _stage2_row(rows[j], n1_i, n1_s, n1_c, fanout, pop, social, w_d, w_2, w_c, w_s, log_mode, k, s_d[ch],
                        s_2[ch], s_c[ch], s_mark[ch], s_touched[ch], hs, hi, out_i[j], out_s[j])


# Serial twins for real-time updates (a few hundred rows): no parallel region, so no thread
# hand-off or barrier — on a loaded server that sync dominated the latency.  ``prange`` is a
# plain ``range`` when ``parallel`` is off.  Not cached on disk (the twin shares its source
# function's cache key); compiled on the first update (~ seconds, warm it at start-up).
stage1_serial = njit(stage1.py_func)
stage2_serial = njit(stage2.py_func)
