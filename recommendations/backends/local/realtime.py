"""The real-time update: new qualifying interactions go into the worker's copy of the published
model, and the recomputed lists (with the reasons of the pairs that changed) go to the cache, where
every web process reads them (`live_list`).
"""

from __future__ import annotations

import logging

import numpy as np
from django.core.cache import cache
from django.db.models import Q

from events.questionnaire import live_qualifying_counts
from recommendations.backends.local.inputs import (
    QUESTIONNAIRE,
    _fade_questionnaire,
    _interaction_rows,
    _training_rows,
    _weights_and_times,
)
from recommendations.backends.local.loaded import loaded_model, published_version
from recommendations.backends.local.reasons import render_pair_reasons
from recommendations.engine import InteractionArrays, Model

logger = logging.getLogger(__name__)


REALTIME_TTL = 24 * 3600  # longer than any retrain interval: a new version makes the keys moot


def realtime_key(version_id: int, attendee_id: int) -> str:
    """The live list of an attendee: packed int64 [contexts, ids x top_k, scores x top_k] (see
    `live_list`), rewritten whenever the worker recomputes the row."""
    return f"recs:local:v{version_id}:a{attendee_id}"


def realtime_why_key(version_id: int, attendee_id: int) -> str:
    """The worker's reasons for that attendee's pairs that changed since training ({candidate pk
    as str: ((kind, text, weight), ...)}), rewritten only when one of them changes."""
    return f"recs:local:v{version_id}:why{attendee_id}"


def live_list(version_id: int, attendee_id: int) -> dict | None:
    """The live list as {"items": [[pk, score], ...], "why": {...}, "contexts": n}, or None.

    WHY two keys and a packed table: an update into a large room recomputes hundreds of rows
    but changes the reasons of only the pairs with the attendee who moved (one row's, as a rule);
    rewriting every row's reasons and building its list as Python objects was most of the
    worker's step (benchmarks/realtime_django.py). The reasons of pairs no longer listed are
    dropped when the row's reasons are next rewritten."""
    table_key, why_key = realtime_key(version_id, attendee_id), realtime_why_key(version_id, attendee_id)
    got = cache.get_many([table_key, why_key])
    table = got.get(table_key)
    if table is None:
        return None
    packed = np.frombuffer(table, dtype=np.int64)
    k = (packed.size - 1) // 2
    ids, scores = packed[1 : 1 + k], packed[1 + k :].view(np.float64)
    listed = ids >= 0
    items = [[b, s] for b, s in zip(ids[listed].tolist(), scores[listed].tolist(), strict=True)]
    return {"items": items, "why": got.get(why_key) or {}, "contexts": int(packed[0])}


def realtime_apply(*, event_id: int, interaction_ids: list[int]) -> int:
    """`realtime_recompute`, counted: the number of attendees whose neighbour lists were recomputed."""
    return len(realtime_recompute(event_id=event_id, interaction_ids=interaction_ids))


def realtime_recompute(*, event_id: int, interaction_ids: list[int]) -> list[int]:
    """Add new qualifying interactions to the live model of the event's published version and
    store the recomputed neighbour lists in the shared cache, where every serving process reads
    them before the artifact's table. Returns the ids of the attendees recomputed (whose lists the
    live push then compares).

    Besides `interaction_ids`, the process also applies every later interaction it has not seen
    (id above what it applied), so a process that missed a signal catches up on the next one and
    every process converges on "artifact + everything since". Idempotent: ids already applied are
    skipped."""
    version = published_version(event_id=event_id)
    if version is None:
        return []
    event = version.event
    loaded = loaded_model(version)
    with loaded.lock:
        # A range on the primary key first, so that PostgreSQL reads only the rows after training.
        qs = _training_rows(event).filter(
            Q(pk__gt=loaded.trained_upto), Q(pk__in=list(interaction_ids)) | Q(pk__gt=loaded.applied_upto)
        )
        rows = _interaction_rows(qs)
        fresh = np.array([pk not in loaded.applied for pk in rows["pk"].tolist()], dtype=bool)
        rows = {k: v[fresh] for k, v in rows.items()}
        if not rows["pk"].size:
            return []
        weight, start, end = _weights_and_times(event, rows)
        if (rows["type"] == QUESTIONNAIRE).any():  # answers hydrated during the event: faded as at training
            answered = rows["attendee"][rows["type"] == QUESTIONNAIRE]
            _fade_questionnaire(weight, rows, live_qualifying_counts(event=event, attendee_ids=set(answered.tolist())))
        keep = weight > 0
        att = np.array([loaded.attendee_index(int(a)) for a in rows["attendee"][keep]], dtype=np.int64)
        ctx = np.array([loaded.context_index(int(k)) for k in rows["context_key"][keep]], dtype=np.int64)
        recomputed = np.empty(0, dtype=np.int64)
        if att.size:
            new = InteractionArrays(
                att, ctx, weight[keep], len(loaded.attendee_ids), len(loaded.context_keys), start[keep], end[keep]
            )
            recomputed = loaded.model.update(new)
        loaded.applied.update(rows["pk"].tolist())
        loaded.applied_upto = max(loaded.applied_upto, int(rows["pk"].max()))
        recomputed_ids = loaded.attendee_ids[recomputed].tolist()
        model = loaded.model
        tab_i, tab_s = model.tab_i[recomputed], model.tab_s[recomputed]
        listed = tab_i >= 0
        k = tab_i.shape[1]
        packed = np.empty((recomputed.size, 1 + 2 * k), dtype=np.int64)  # see `live_list`
        packed[:, 0] = model.A.length[recomputed]
        packed[:, 1 : 1 + k] = np.where(listed, loaded.attendee_ids[np.maximum(tab_i, 0)], -1)
        packed[:, 1 + k :] = tab_s.view(np.int64)
        lists = {realtime_key(version.pk, pk): packed[i].tobytes() for i, pk in enumerate(recomputed_ids)}
        if recomputed.size >= Model.BULK_ROWS:
            # A catch-up (a worker that starts afresh mid-event) explains hundreds of thousands of
            # pairs, which takes tens of seconds at size M: the new rankings go out first, and their
            # pairs are explained from the artifact by the serving processes until the reasons follow.
            cache.set_many(lists, timeout=REALTIME_TTL)
            lists = {}
        # Reasons only where the pair changed (it involves someone who moved): the web processes
        # explain every other pair from their own copy of the published artifact, which lacks
        # what happened since training (WHY not all pairs: explaining ~25 pairs for each of a few
        # hundred rows would cost the worker more than the update itself).
        moved = np.unique(att)
        pair = listed & (np.isin(recomputed, moved)[:, None] | np.isin(tab_i, moved))
        row_of, col_of = np.nonzero(pair)
        changed = list(zip(recomputed[row_of].tolist(), tab_i[row_of, col_of].tolist(), strict=True))
        explained: dict[int, dict[str, tuple]] = {}
        for (a, b), why in render_pair_reasons(loaded, changed).items():
            pk_b = str(int(loaded.attendee_ids[b]))
            explained.setdefault(a, {})[pk_b] = tuple((r.kind, r.text, r.weight) for r in why)
        for i, a in enumerate(recomputed.tolist()):
            if a in explained:  # the row's reasons changed: rewrite them, keeping those still listed
                still = set(map(str, loaded.attendee_ids[tab_i[i][listed[i]]].tolist()))
                kept = {b: r for b, r in loaded.why.get(a, {}).items() if b in still}
                kept.update(explained[a])
                loaded.why[a] = kept
                lists[realtime_why_key(version.pk, recomputed_ids[i])] = kept
    cache.set_many(lists, timeout=REALTIME_TTL)
    return recomputed_ids
