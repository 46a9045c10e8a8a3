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
def _pair_term(va, vb, bonus, sa, ea, sb, eb):
    """One shared context's term of a pair's direct score: ``va`` (a's value there x the context's
    idf) times ``vb``, raised by the same-time bonus as far as their stays overlap. The one
    expression of stage 1, the real-time pair and the explanations, whose floats must agree to
    the bit."""
    f = 1.0
    if bonus != 0.0:
        f = 1.0 + bonus * _overlap(sa, ea, sb, eb)
    return va * vb * f


@njit(cache=True, inline="always")
def _sift_down(hs, hi, n):
    """Restore the min-heap ``hs[:n]`` (``hi`` alongside; on equal scores the higher index is the
    worse) after its root was replaced."""
    pos = 0
    while True:
        left = 2 * pos + 1
        r = left + 1
        m = pos
        if left < n and (hs[left] < hs[m] or (hs[left] == hs[m] and hi[left] > hi[m])):
            m = left
        if r < n and (hs[r] < hs[m] or (hs[r] == hs[m] and hi[r] > hi[m])):
            m = r
        if m == pos:
            break
        hs[m], hs[pos] = hs[pos], hs[m]
        hi[m], hi[pos] = hi[pos], hi[m]
        pos = m


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
        _sift_down(hs, hi, size)
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
        _sift_down(hs, hi, n)


@njit(cache=True)
def _stage1_row(a, A, C, idf, bonus, min_co, k, acc, cnt, touched, hs, hi, out_i, out_s, out_c):
    a_ptr, a_len, a_idx, a_v, a_s, a_e = A
    c_ptr, c_len, c_idx, c_v, c_s, c_e = C
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
            if cnt[b] == 0:
                touched[nt] = b
                nt += 1
            cnt[b] += 1
            acc[b] += _pair_term(va, c_v[r], bonus, sa, ea, c_s[r], c_e[r])
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
def stage1(rows, A, C, idf, bonus, min_co, k, scratch, out):
    """Top-k co-presence partners for each attendee in ``rows`` (written at out[j] for rows[j]).

    ``A`` and ``C``: the attendee -> contexts and context -> attendees blocks, each as
    (ptr, length, idx, v, s, e) (`_Blocks.arrays`); ``scratch``: (acc, cnt, touched); ``out``:
    (partner, score, shared count, degree).

    One chunk per scratch row (``s_*`` have shape (n_chunks, n_attendees), all-zero on entry and
    left all-zero); rows are interleaved over chunks for load balance.  WHY persistent scratch:
    a real-time update recomputes a few hundred rows, and zeroing fresh n-sized buffers per call
    would cost as much as the arithmetic."""
    s_acc, s_cnt, s_touched = scratch
    out_i, out_s, out_c, out_deg = out
    m = rows.shape[0]
    n_chunks = s_acc.shape[0]
    for ch in prange(n_chunks):
        hs = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for j in range(ch, m, n_chunks):
            out_deg[j] = _stage1_row(
                rows[j],
                A,
                C,
                idf,
                bonus,
                min_co,
                k,
                s_acc[ch],
                s_cnt[ch],
                s_touched[ch],
                hs,
                hi,
                out_i[j],
                out_s[j],
                out_c[j],
            )


@njit(cache=True)
def activity(rows, a_ptr, a_len, a_idx, a_w, idf, c_len, scale, out):
    """log1p(sum of w / scale * ln(size) over each row's contexts that count (idf > 0: within the
    cap, at least two members)): ``Model._refresh_prior``."""
    for j in range(rows.shape[0]):
        a = rows[j]
        t = 0.0
        p0 = a_ptr[a]
        for q in range(p0, p0 + a_len[a]):
            c = a_idx[q]
            if idf[c] == 0.0:
                continue
            t += a_w[q] / scale * np.log(float(c_len[c]))
        out[j] = np.log1p(t)


@njit(cache=True, inline="always")
def norm_direct(d, dmax, log_mode):
    if dmax <= 0.0:
        return 0.0
    if log_mode:
        return np.log1p(d) / np.log1p(dmax)
    return d / dmax


@njit(cache=True)
def _stage2_row(a, n1, fanout, pop, social, weights, k, acc_d, acc_2, acc_c, mark, touched, hs, hi, out_i, out_s):
    n1_i, n1_s, n1_c = n1
    w_d, w_2, w_c, w_s, log_mode = weights
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
def stage2(rows, n1, fanout, pop, social, weights, k, scratch, out):
    """Final top-k for each attendee in ``rows``. ``n1``: stage 1's (partner, score, shared count)
    tables; ``weights``: (direct, two-hop, repeat, prior, log transform of direct); ``scratch``:
    (direct, count, two-hop, mark, touched), as in :func:`stage1`; ``out``: (partner, score)."""
    s_d, s_c, s_2, s_mark, s_touched = scratch
    out_i, out_s = out
    m = rows.shape[0]
    n_chunks = s_d.shape[0]
    for ch in prange(n_chunks):
        hs = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for j in range(ch, m, n_chunks):
            _stage2_row(
                rows[j],
                n1,
                fanout,
                pop,
                social,
                weights,
                k,
                s_d[ch],
                s_2[ch],
                s_c[ch],
                s_mark[ch],
                s_touched[ch],
                hs,
                hi,
                out_i[j],
                out_s[j],
            )


# Serial twins for real-time updates (a few hundred rows): no parallel region, so no thread
# hand-off or barrier — on a loaded server that sync dominated the latency.  ``prange`` is a
# plain ``range`` when ``parallel`` is off.  Not cached on disk (the twin shares its source
# function's cache key); compiled on the first update (~ seconds, warm it at start-up).
stage1_serial = njit(stage1.py_func)
stage2_serial = njit(stage2.py_func)


# --------------------------------------------------------------------------- real-time: members
# When an attendee's presence in a context changes, every other member ``b`` of that context sees
# only its pairs with members of that context change: the pair with the attendee who moved, and
# (the context grew, so its idf fell) a small decrease of its pairs with the other members. Rather
# than recompute ``b``'s whole row, the kernel below re-scores just those pairs exactly and keeps
# the row's top-k *provably* exact with a guard: the best partner outside the stored top-k, as of
# the row's last full computation. Partners outside the list can only have fallen since (idf only
# falls as contexts grow; every rise goes through the changed attendees, who are re-scored here),
# so if the new k-th candidate still ranks above the guard, nobody outside can enter. Otherwise
# the row is flagged and recomputed in full by the caller (which refreshes its guard).

GUARD_NONE = -1  # no partner outside the list: the list holds every partner
GUARD_UNKNOWN = -2  # not known (a model loaded from an older artifact): always recompute


@njit(cache=True, inline="always")
def _ranks_below(s1, i1, s2, i2):
    """(s1, i1) ranks strictly below (s2, i2): lower score, or the same score and a higher index."""
    return s1 < s2 or (s1 == s2 and i1 > i2)


@njit(cache=True)
def _contains(c_ptr, c_len, c_idx, c, x):
    p = c_ptr[c]
    lo = 0
    hi = c_len[c]
    while lo < hi:
        mid = (lo + hi) >> 1
        if c_idx[p + mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < c_len[c] and c_idx[p + lo] == x


@njit(cache=True, inline="always")
def _next_shared(idx, p, ep, q, eq):
    """Walk two sorted runs of ``idx`` ([p, ep) and [q, eq)) to their next common value: the
    positions of the match, or (ep, eq) when there is none."""
    while p < ep and q < eq:
        if idx[p] < idx[q]:
            p += 1
        elif idx[q] < idx[p]:
            q += 1
        else:
            return p, q
    return ep, eq


@njit(cache=True)
def _pair(b, x, A, idf, bonus):
    """``direct(b, x)`` and the number of shared counted contexts, by merging the two attendees'
    sorted context lists. Summed in ``b``'s context order with stage 1's expression, so the float
    is bit-identical to what row ``b`` of :func:`stage1` computes."""
    a_ptr, a_len, a_idx, a_v, a_s, a_e = A
    pb = a_ptr[b]
    eb = pb + a_len[b]
    px = a_ptr[x]
    ex = px + a_len[x]
    acc = 0.0
    cnt = 0
    # the walk spelled out rather than with _next_shared: on the single-interaction path this loop
    # is the hot one, and the helper cost 5-25 % at p50 (benchmarks/realtime_update.py, in turn)
    while pb < eb and px < ex:
        cb = a_idx[pb]
        cx = a_idx[px]
        if cb < cx:
            pb += 1
        elif cx < cb:
            px += 1
        else:
            w = idf[cb]
            if w != 0.0:
                acc += _pair_term(a_v[pb] * w, a_v[px], bonus, a_s[pb], a_e[pb], a_s[px], a_e[px])
                cnt += 1
            pb += 1
            px += 1
    return acc, cnt


@njit(cache=True)
def member_rows(rows, change, A, C, idf, bonus, min_co, n1, guard, deg, fallback):
    """Update the stage-1 rows of ``rows`` (members of the touched contexts ``ctx`` whose own
    presence did not change) in place; ``fallback[j] = 1`` where the guard cannot prove the new
    list exact (the caller recomputes those rows in full). ``chg_idx[chg_ptr[t]:chg_ptr[t + 1]]``
    are the attendees whose presence in ``ctx[t]`` changed, ``chg_new`` 1 where it is new
    (``change`` = (ctx, chg_ptr, chg_idx, chg_new)); ``C`` = (ptr, length, idx) of the context
    blocks (the values come from ``A``); ``n1`` and ``guard`` = (score, partner) are updated."""
    ctx, chg_ptr, chg_idx, chg_new = change
    c_ptr, c_len, c_idx = C
    n1_i, n1_s, n1_c = n1
    g_s, g_i = guard
    k1 = n1_i.shape[1]
    thr = min_co if min_co > 1 else 1
    n_ctx = ctx.shape[0]
    n_chg = chg_idx.shape[0]
    cs = np.empty(k1 + n_chg, dtype=np.float64)
    ci = np.empty(k1 + n_chg, dtype=np.int64)
    cc = np.empty(k1 + n_chg, dtype=np.int64)
    seen = np.empty(n_chg, dtype=np.int64)
    mine = np.empty(n_ctx, dtype=np.int64)
    for j in range(rows.shape[0]):
        b = rows[j]
        nb = 0
        for t in range(n_ctx):
            if _contains(c_ptr, c_len, c_idx, ctx[t], b):
                mine[nb] = t
                nb += 1
        m = 0
        # 1. the stored partners: re-score those who share a touched context with b
        for q in range(k1):
            x = n1_i[b, q]
            if x < 0:
                break
            hit = False
            for u in range(nb):
                if _contains(c_ptr, c_len, c_idx, ctx[mine[u]], x):
                    hit = True
                    break
            if hit:
                s, c = _pair(b, x, A, idf, bonus)
            else:
                s = n1_s[b, q]
                c = n1_c[b, q]
            if c >= thr:
                cs[m] = s
                ci[m] = x
                cc[m] = c
                m += 1
        # 2. the attendees who moved into (or stayed longer in) b's touched contexts
        d_deg = 0
        ns = 0
        for u in range(nb):
            t = mine[u]
            for p in range(chg_ptr[t], chg_ptr[t + 1]):
                x = chg_idx[p]
                if x == b:
                    continue
                dup = False
                for r in range(ns):
                    if seen[r] == x:
                        dup = True
                        break
                if dup:
                    continue
                seen[ns] = x
                ns += 1
                s, c = _pair(b, x, A, idf, bonus)
                # contexts of b that x newly joined in this batch did not count before it
                before = c
                for w in range(nb):
                    t2 = mine[w]
                    for p2 in range(chg_ptr[t2], chg_ptr[t2 + 1]):
                        if chg_idx[p2] == x and chg_new[p2] == 1:
                            before -= 1
                d_deg += (1 if c >= thr else 0) - (1 if before >= thr else 0)
                listed = -1
                for r in range(m):
                    if ci[r] == x:
                        listed = r
                        break
                if listed >= 0:
                    if c >= thr:
                        cs[listed] = s
                        cc[listed] = c
                    else:  # cannot happen while counts only grow; kept for safety
                        cs[listed] = cs[m - 1]
                        ci[listed] = ci[m - 1]
                        cc[listed] = cc[m - 1]
                        m -= 1
                elif c >= thr:
                    cs[m] = s
                    ci[m] = x
                    cc[m] = c
                    m += 1
        # 3. sort the candidates (best first, ties by lower index): at most k1 + a few
        for r in range(1, m):
            s0 = cs[r]
            i0 = ci[r]
            c0 = cc[r]
            p = r - 1
            while p >= 0 and _ranks_below(cs[p], ci[p], s0, i0):
                cs[p + 1] = cs[p]
                ci[p + 1] = ci[p]
                cc[p + 1] = cc[p]
                p -= 1
            cs[p + 1] = s0
            ci[p + 1] = i0
            cc[p + 1] = c0
        # 4. exact only if nobody outside can rank in: no outsider, or the k-th still above the guard
        gi = g_i[b]
        if gi == GUARD_UNKNOWN:
            fallback[j] = 1
            continue
        if gi != GUARD_NONE and (m < k1 or not _ranks_below(g_s[b], gi, cs[k1 - 1], ci[k1 - 1])):
            fallback[j] = 1
            continue
        for q in range(k1):
            if q < m:
                n1_i[b, q] = ci[q]
                n1_s[b, q] = cs[q]
                n1_c[b, q] = cc[q]
            else:
                n1_i[b, q] = -1
                n1_s[b, q] = 0.0
                n1_c[b, q] = 0
        # the guard stays an upper bound: the old one, or the best candidate that fell out
        if m > k1 and (gi == GUARD_NONE or _ranks_below(g_s[b], gi, cs[k1], ci[k1])):
            g_s[b] = cs[k1]
            g_i[b] = ci[k1]
        deg[b] += d_deg


@njit(cache=True)
def shared_contexts(a, bs, A, a_w, idf, bonus):
    """The counted contexts ``a`` shares with each of ``bs`` (ascending), for explanations: returns
    (offsets: pair t owns entries off[t]:off[t + 1], context, contribution to ``direct(a, b)``,
    a's weight there, b's weight there, overlap of their intervals). The contribution is
    :func:`_pair`'s expression with ``a`` first, as the explanations have always computed it (WHY
    a kernel: a worker catching up explains hundreds of thousands of pairs)."""
    a_ptr, a_len, a_idx, a_v, a_s, a_e = A
    pa = a_ptr[a]
    na = a_len[a]
    bound = 0
    for t in range(bs.shape[0]):
        nb = a_len[bs[t]]
        bound += na if na < nb else nb
    off = np.zeros(bs.shape[0] + 1, dtype=np.int64)
    ctx = np.empty(bound, dtype=np.int64)
    con = np.empty(bound, dtype=np.float64)
    wa = np.empty(bound, dtype=np.float64)
    wb = np.empty(bound, dtype=np.float64)
    ov = np.empty(bound, dtype=np.float64)
    k = 0
    for t in range(bs.shape[0]):
        pb = a_ptr[bs[t]]
        eb = pb + a_len[bs[t]]
        eq = pa + na
        q, pb = _next_shared(a_idx, pa, eq, pb, eb)
        while q < eq:
            c = a_idx[q]
            w = idf[c]
            if w != 0.0:
                ctx[k] = c
                con[k] = _pair_term(a_v[q] * w, a_v[pb], bonus, a_s[q], a_e[q], a_s[pb], a_e[pb])
                wa[k] = a_w[q]
                wb[k] = a_w[pb]
                ov[k] = _overlap(a_s[q], a_e[q], a_s[pb], a_e[pb])
                k += 1
            q, pb = _next_shared(a_idx, q + 1, eq, pb + 1, eb)
        off[t + 1] = k
    return off, ctx[:k], con[:k], wa[:k], wb[:k], ov[:k]
