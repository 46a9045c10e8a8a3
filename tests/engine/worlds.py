"""Small made-up events whose right answer is known, for the ranker's tests (here and in
tests/recommendations): rows are (attendee, context, seconds, start)."""

import numpy as np

from recommendations.engine import InteractionArrays


def interactions(rows, n_att):
    """rows: (attendee, context, seconds, start)"""
    a, c, w, s = (np.array(col) for col in zip(*rows, strict=True))
    return InteractionArrays(
        a.astype(np.int64), c.astype(np.int64), w.astype(float), n_att, int(c.max()) + 1, s.astype(float), s + w
    )


def misleading_history(n=40, hubs=4, steps=24):
    """Early on, everyone meets a fixed partner again and again, and one hub once; the four hubs
    meet as a group throughout. Later, nobody meets their partner: everyone meets every hub. The
    obvious list (the most sociable people) is right, and the pair evidence misleads."""
    rows, ctx = [], 0
    others = list(range(hubs, n))

    def meet(a, b, t):
        nonlocal ctx
        rows.extend([(a, ctx, 120, 300 * t), (b, ctx, 120, 300 * t)])
        ctx += 1

    for t in range(steps):
        early = t < steps // 2
        rows.extend((h, ctx, 120, 300 * t) for h in range(hubs))  # the hubs among themselves
        ctx += 1
        for i, a in enumerate(others):
            if early and i % 2 == 0:
                meet(a, others[i + 1], t)
            if early and t == i % 5:
                meet(a, i % hubs, t)
            if not early:
                meet(a, (t + i) % hubs, t)
    return interactions(rows, n)


def groups(n=60, size=10, steps=12):
    """People meet within their group of ten, a few members at a time: by midway each has met some
    of the group, and later meets the rest. Repeat meetings and people met in common tell who."""
    rng = np.random.default_rng(3)
    rows, ctx = [], 0
    for t in range(steps):
        for g in range(n // size):
            members = [int(m) for m in rng.permutation(range(g * size, (g + 1) * size))]
            for a, b in zip(members[::2], members[1::2], strict=True):
                rows += [(a, ctx, 120, 300 * t), (b, ctx, 120, 300 * t)]
                ctx += 1
    return interactions(rows, n)


def dense(n=40, met=30, steps=6):
    """Attendee 0 meets each of 1..met alone at every step, and those also meet each other in
    pairs; the rest (met+1..n-1) meet only each other, once. Everyone the model ranks first for
    attendee 0 is someone already met."""
    rows, ctx = [], 0
    for t in range(steps):
        for b in range(1, met + 1):
            rows += [(0, ctx, 120, 600 * t), (b, ctx, 120, 600 * t)]
            ctx += 1
        for b in range(1, met, 2):
            rows += [(b, ctx, 120, 600 * t + 300), (b + 1, ctx, 120, 600 * t + 300)]
            ctx += 1
    for b in range(met + 1, n - 1, 2):
        rows += [(b, ctx, 60, 0), (b + 1, ctx, 60, 0)]
        ctx += 1
    return interactions(rows, n)
