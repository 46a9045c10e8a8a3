"""Readable reasons for the local model's pairs: the engine's explanation of a pair turned into
sentences ("you both spent 41 min in 'Keynote'"), with the contexts' names.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from django.utils.translation import gettext_noop

from events.models import Content, InterestTag, Room
from recommendations.backends import Reason
from recommendations.backends.local.inputs import CONTENT, INTEREST, ROOM
from recommendations.backends.local.loaded import LoadedModel
from recommendations.engine import Explanation

logger = logging.getLogger(__name__)


SPENT_TEXT = gettext_noop("you both spent {minutes} min in '{name}'")


SPENT_SAME_TIME_TEXT = gettext_noop("you both spent {minutes} min in '{name}' at the same time")


WATCHED_TEXT = gettext_noop("you both watched '{name}'")


CHOSE_TEXT = gettext_noop("you both chose {name}")


# "Met" means shared a room or session with, which is what the model sees; the words say so.
MUTUAL_TEXT = gettext_noop("{n} people you have both been in sessions with")


MUTUAL_ONE_TEXT = gettext_noop("1 person you have both been in a session with")


SOCIABLE_TEXT = gettext_noop("well connected: in sessions with {n} people here")


ACTIVE_TEXT = gettext_noop("meets many people: {minutes} min in company here")


REPEAT_TEXT = gettext_noop("you were together in {n} sessions")


RECENT_TEXT = gettext_noop("you were together recently")


MAX_CONTEXT_REASONS = 3


NAMES_SECONDS = 60


def _context_names(loaded: LoadedModel, keys: list[int]) -> dict[int, str]:
    """Names of contexts by key: from the loaded version's copy when fetched in the last
    NAMES_SECONDS, else one query per kind. WHY: every explanation names its rooms, and the query
    was a database round trip on every real-time step and every request explained from the
    artifact; a renamed room shows in new reasons within a minute, as the rules index does."""
    now = time.monotonic()
    out: dict[int, str] = {}
    by_kind: dict[int, list[int]] = {}
    for key in keys:
        known = loaded.names.get(key)
        if known is not None and now - known[1] < NAMES_SECONDS:
            out[key] = known[0]
        else:
            by_kind.setdefault(key >> 48, []).append(key & ((1 << 48) - 1))
    for kind, model, field_name in (
        (ROOM, Room, "name"),
        (CONTENT, Content, "title"),
        (INTEREST, InterestTag, "label"),
    ):
        if kind not in by_kind:
            continue
        for pk, name in model.objects.filter(pk__in=by_kind[kind]).values_list("pk", field_name):
            key = (kind << 48) | pk
            out[key] = name
            loaded.names[key] = (name, now)
    return out


def _pair_reasons(why: Explanation, keys: np.ndarray) -> tuple[list[tuple[str, int, float, str]], list[Reason]]:
    """Model reasons for one pair, before names are known: the context parts as (kind, context key,
    weight, template with {name}) and the rest as finished Reasons. `keys`: the product's key of
    each engine context. Only evidence that counts *for* the pair is a reason: a feature the
    event's learned weights count against (a negative contribution) is left out."""
    parts = []
    direct = why.features.get("direct", 0.0)
    if why.direct_raw > 0 and direct > 0:
        for (c, contrib), (w_a, w_b, overlap) in zip(
            why.contexts[:MAX_CONTEXT_REASONS], why.presence[:MAX_CONTEXT_REASONS], strict=True
        ):
            key = int(keys[c])
            kind = key >> 48
            weight = direct * contrib / why.direct_raw
            if kind == ROOM:
                spent = str(max(1, round(min(w_a, w_b) / 60)))
                if overlap >= 0.5:
                    parts.append(("same_time", key, weight, SPENT_SAME_TIME_TEXT.replace("{minutes}", spent)))
                else:
                    parts.append(("shared_room", key, weight, SPENT_TEXT.replace("{minutes}", spent)))
            elif kind == CONTENT:
                parts.append(("shared_content", key, weight, WATCHED_TEXT))
            else:
                parts.append(("shared_interest", key, weight, CHOSE_TEXT))
    reasons = []
    features = why.features
    if why.via and features.get("two_hop", 0.0) > 0:
        n = len(why.via)
        reasons.append(
            Reason("mutual_contacts", MUTUAL_ONE_TEXT if n == 1 else MUTUAL_TEXT.format(n=n), features["two_hop"])
        )
    if why.shared_contexts > 1 and features.get("repeat", 0.0) > 0:
        reasons.append(Reason("repeat", REPEAT_TEXT.format(n=why.shared_contexts), features["repeat"]))
    if why.degree_b and features.get("social", 0.0) > 0:
        reasons.append(Reason("sociable", SOCIABLE_TEXT.format(n=why.degree_b), features["social"]))
    if why.company_seconds >= 60 and features.get("activity", 0.0) > 0:
        minutes = round(why.company_seconds / 60)
        reasons.append(Reason("active", ACTIVE_TEXT.format(minutes=minutes), features["activity"]))
    return parts, reasons


def render_pair_reasons(loaded: LoadedModel, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[Reason, ...]]:
    """Reasons for several (a index, b index) pairs: each row's pairs explained together
    (`Model.explain_row`), one query per context kind for the names."""
    by_row: dict[int, list[int]] = {}
    for a, b in pairs:
        by_row.setdefault(a, []).append(b)
    explained = {}
    for a, bs in by_row.items():
        for b, why in zip(bs, loaded.model.explain_row(a, bs), strict=True):
            explained[(a, b)] = _pair_reasons(why, loaded.context_keys)
    names = _context_names(loaded, list({key for parts, _ in explained.values() for _, key, _, _ in parts}))
    out = {}
    for pair, (parts, rest) in explained.items():
        reasons = [Reason(kind, text.replace("{name}", names.get(key, "?")), w) for kind, key, w, text in parts]
        reasons.extend(rest)
        reasons.sort(key=lambda r: -r.weight)
        out[pair] = tuple(reasons)
    return out


def render_reasons(loaded: LoadedModel, pairs: list[tuple[int, int]]) -> dict[int, tuple[Reason, ...]]:
    """`render_pair_reasons` for pairs of one attendee, keyed by the other one's index."""
    return {b: why for (_, b), why in render_pair_reasons(loaded, pairs).items()}
