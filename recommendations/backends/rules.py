"""The rules engine: suggestions from declared data alone, for the cold start and as the last fallback.

Signals, each counted per declared item and weighted (organizers can change the weights per event
with `MatchmakingRule`s of kind "weight"):

- shared interests: one per interest tag both declared (default weight 1);
- complementary offers and seeks: one per tag the viewer seeks and the other offers, and one per
  tag the other seeks and the viewer offers (default weight 2: a concrete reason to talk, which
  is what a matchmaking widget exists for, so it outranks a shared topic);
- planned sessions: one per room both plan to attend (default weight 1).

score = (sum of weighted signals) x (product of the organizer boosts that apply); a pair with no
signal is not a candidate, boosts only reorder pairs that have a reason to meet. "Who may meet
whom" rules remove candidates of groups the viewer's group may not meet.

Two halves: `score_pair` is a pure function over `Declared` data and a `RuleSet` that computes
the score and its reasons (the reference, and what tests check exactly); `rules_candidates`
finds the best candidates among all attendees with vectorised arithmetic over a per-event index
of the declared data (`rank_candidates`), then recomputes the top few with `score_pair`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils.translation import gettext_noop

from events.models import Attendee, Event, InterestTag, Room
from matchmaking_site.cache import count_up
from recommendations.backends import Candidate, Reason, RecommendationBackend
from recommendations.models import MatchmakingRule

logger = logging.getLogger(__name__)

SHARED_INTEREST = MatchmakingRule.Signal.SHARED_INTEREST.value
COMPLEMENTARY = MatchmakingRule.Signal.COMPLEMENTARY.value
PLANNED_SESSION = MatchmakingRule.Signal.PLANNED_SESSION.value
DEFAULT_WEIGHTS = {SHARED_INTEREST: 1.0, COMPLEMENTARY: 2.0, PLANNED_SESSION: 1.0}

# Reason texts (tests reuse them).
SHARED_INTERESTS_TEXT = gettext_noop("shared interests: {labels}")
SHARED_INTEREST_TEXT = gettext_noop("shared interest: {labels}")
YOU_SEEK_TEXT = gettext_noop("you seek {label}, they offer it")
THEY_SEEK_TEXT = gettext_noop("they seek {label}, you offer it")
PLANNED_TEXT = gettext_noop("you both plan to attend {names}")
BOOST_GROUP_TEXT = gettext_noop("the organizers highlight {group} attendees")
BOOST_TAG_TEXT = gettext_noop("the organizers highlight {label}")


@dataclass(frozen=True)
class Declared:
    """What one attendee declared: ids of interest tags, offers, seeks, planned rooms."""

    attendee_id: int
    group: str = ""
    interests: frozenset[int] = frozenset()
    offers: frozenset[int] = frozenset()
    seeks: frozenset[int] = frozenset()
    planned_rooms: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RuleSet:
    """An event's organizer rules, resolved. Built by `load_rules`, or by hand in tests."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    allow: dict[str, frozenset[str]] = field(default_factory=dict)  # viewer group -> groups it may meet
    group_boosts: tuple[tuple[str, str, float], ...] = ()  # (viewer group or "", candidate group, factor)
    tag_boosts: tuple[tuple[str, int, float], ...] = ()  # (viewer group or "", tag id, factor)

    def may_meet(self, viewer_group: str, other_group: str) -> bool:
        allowed = self.allow.get(viewer_group)
        return allowed is None or other_group in allowed

    def group_factors(self, viewer_group: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for viewer, group, factor in self.group_boosts:
            if viewer in ("", viewer_group):
                out[group] = out.get(group, 1.0) * factor
        return out

    def tag_factors(self, viewer_group: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for viewer, tag, factor in self.tag_boosts:
            if viewer in ("", viewer_group):
                out[tag] = out.get(tag, 1.0) * factor
        return out


# "Who may meet whom" is applied to every source in serving (a post-filter), so it is read on
# every cache miss and every "here now" read: cached per event, dropped when a rule changes.
ALLOW_KEY = "rules:allow:{event_id}"
ALLOW_TTL = 3600


def allow_map(*, event_id: int) -> dict[str, frozenset[str]]:
    """The event's enabled allow rules: viewer group -> the groups it may meet."""
    key = ALLOW_KEY.format(event_id=event_id)
    value = cache.get(key)
    if value is None:
        pairs = MatchmakingRule.objects.filter(
            event_id=event_id, enabled=True, kind=MatchmakingRule.Kind.ALLOW
        ).values_list("from_group", "to_group")
        grouped: dict[str, set[str]] = {}
        for viewer_group, other_group in pairs:
            grouped.setdefault(viewer_group, set()).add(other_group)
        value = {g: frozenset(s) for g, s in grouped.items()}
        cache.set(key, value, timeout=ALLOW_TTL)
    return value


def allowed_groups(*, event_id: int, viewer_group: str) -> frozenset[str] | None:
    """The groups a viewer of `viewer_group` may be suggested, or None when no rule limits them."""
    return allow_map(event_id=event_id).get(viewer_group)


def allow_map_invalidate(*, event_id: int) -> None:
    key = ALLOW_KEY.format(event_id=event_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def load_rules(*, event: Event) -> RuleSet:
    weights = dict(DEFAULT_WEIGHTS)
    group_boosts, tag_boosts = [], []
    for rule in (
        MatchmakingRule.objects.filter(event=event, enabled=True)
        .exclude(kind=MatchmakingRule.Kind.ALLOW)
        .order_by("id")
    ):
        if rule.kind == MatchmakingRule.Kind.WEIGHT:
            weights[rule.signal] = rule.value
        elif rule.kind == MatchmakingRule.Kind.BOOST_GROUP:
            group_boosts.append((rule.from_group, rule.to_group, rule.value))
        elif rule.kind == MatchmakingRule.Kind.BOOST_TAG:
            assert rule.tag_id is not None  # the constraint matchmaking_rule_boost_tag_has_tag
            tag_boosts.append((rule.from_group, rule.tag_id, rule.value))
    return RuleSet(
        weights=weights,
        allow=allow_map(event_id=event.pk),  # the one reading of the allow rules, serving's too
        group_boosts=tuple(group_boosts),
        tag_boosts=tuple(tag_boosts),
    )


def _names(ids: Iterable[int], names: dict[int, str]) -> list[str]:
    return sorted((names.get(i, str(i)) for i in ids), key=str.casefold)


def score_pair(
    viewer: Declared,
    other: Declared,
    *,
    rules: RuleSet,
    tag_labels: dict[int, str],
    room_names: dict[int, str],
) -> tuple[float, tuple[Reason, ...]]:
    """Score `other` as a suggestion for `viewer`, with one reason per signal, strongest kind
    first. Each reason's weight is its share of the score (boosts included); they sum to it.
    Returns (0.0, ()) for a pair with no signal or that the "who may meet whom" rules forbid."""
    if not rules.may_meet(viewer.group, other.group):
        return 0.0, ()
    w = rules.weights
    parts: list[tuple[str, str, float]] = []  # (kind, text, unboosted contribution)
    for tag in _sorted_by_label(viewer.seeks & other.offers, tag_labels):
        parts.append(("complementary", YOU_SEEK_TEXT.format(label=tag_labels.get(tag, tag)), w[COMPLEMENTARY]))
    for tag in _sorted_by_label(viewer.offers & other.seeks, tag_labels):
        parts.append(("complementary", THEY_SEEK_TEXT.format(label=tag_labels.get(tag, tag)), w[COMPLEMENTARY]))
    shared = viewer.interests & other.interests
    if shared:
        template = SHARED_INTERESTS_TEXT if len(shared) > 1 else SHARED_INTEREST_TEXT
        parts.append(
            (
                "shared_interest",
                template.format(labels=", ".join(_names(shared, tag_labels))),
                w[SHARED_INTEREST] * len(shared),
            )
        )
    rooms = viewer.planned_rooms & other.planned_rooms
    if rooms:
        quoted = ", ".join(f"'{n}'" for n in _names(rooms, room_names))
        parts.append(("planned_session", PLANNED_TEXT.format(names=quoted), w[PLANNED_SESSION] * len(rooms)))
    base = sum(p[2] for p in parts)
    if base <= 0.0:
        return 0.0, ()

    boosts: list[tuple[str, float]] = []
    group_factor = rules.group_factors(viewer.group).get(other.group, 1.0) if other.group else 1.0
    if group_factor != 1.0:
        boosts.append((BOOST_GROUP_TEXT.format(group=other.group), group_factor))
    declared = other.interests | other.offers
    for tag, factor in sorted(rules.tag_factors(viewer.group).items()):
        if tag in declared and factor != 1.0:
            boosts.append((BOOST_TAG_TEXT.format(label=tag_labels.get(tag, tag)), factor))
    factor = 1.0
    for _, f in boosts:
        factor *= f
    score = base * factor
    reasons = [Reason(kind, text, contribution * factor) for kind, text, contribution in parts if contribution]
    # The boosts' share: what they added (or removed) on top of the plain signals, split evenly.
    if boosts:
        extra = (score - base) / len(boosts)
        reasons.extend(Reason("organizer_boost", text, extra) for text, _ in boosts)
    return score, tuple(reasons)


def _sorted_by_label(ids: Iterable[int], labels: dict[int, str]) -> list[int]:
    return sorted(ids, key=lambda i: (str(labels.get(i, i)).casefold(), i))


# --- Reading declared data ------------------------------------------------------------------------

_THROUGH = {
    "interests": (Attendee.interests.through, "interesttag_id"),
    "offers": (Attendee.offers.through, "interesttag_id"),
    "seeks": (Attendee.seeks.through, "interesttag_id"),
    "planned_rooms": (Attendee.planned_rooms.through, "room_id"),
}


def declared_for(*, attendee_ids: Iterable[int]) -> dict[int, Declared]:
    """Declared data of some attendees: one query per relation, whatever their number."""
    ids = list(attendee_ids)
    if not ids:
        return {}
    sets: dict[str, dict[int, set[int]]] = {name: {} for name in _THROUGH}
    for name, (through, column) in _THROUGH.items():
        for attendee_id, target in through._default_manager.filter(attendee_id__in=ids).values_list(
            "attendee_id", column
        ):
            sets[name].setdefault(attendee_id, set()).add(target)
    groups = dict(Attendee.objects.filter(pk__in=ids).values_list("pk", "group"))
    return {
        pk: Declared(
            attendee_id=pk,
            group=groups[pk],
            **{name: frozenset(sets[name].get(pk, ())) for name in _THROUGH},
        )
        for pk in ids
        if pk in groups
    }


# --- Finding candidates among all attendees --------------------------------------------------------

# Rules candidates are found in a per-process, per-event index of the declared data (tag or room ->
# numpy array of attendee positions), rebuilt at most every RULES_INDEX_SECONDS. One attendee's
# scores over 50k attendees are then a few vectorised additions (milliseconds even when a tag is
# declared by half the event), where an aggregate SQL query over the M2M tables took hundreds of
# milliseconds. The viewer's own data is always read fresh, and the returned candidates are
# re-scored from fresh rows by `pair_candidates`; only *which* people are considered can lag.
# It lags by little: a change of declared data (a profile edit, a platform's upsert; after commit)
# bumps the event's declared version in the shared cache (`rules_index_outdate`), and an index of
# an older version is rebuilt at its next use: at once when its last build was quick (small and
# medium events), else in the background, after which the event's cached lists are dropped once
# more (a list made from the old index in between would otherwise be kept for the cold phase's
# 10 minutes). Changes that bypass the services are caught by the TTL (RULES_INDEX_SECONDS).


@dataclass
class RulesIndex:
    event_id: int
    built_at: float
    version: int  # the event's declared version it was built from
    build_seconds: float
    attendee_ids: np.ndarray  # position -> Attendee pk, sorted
    group_codes: np.ndarray  # position -> index into `groups`
    groups: list[str]
    postings: dict[str, dict[int, np.ndarray]]  # relation -> target id -> positions

    def positions(self, relation: str, target: int) -> np.ndarray:
        return self.postings[relation].get(target, _EMPTY)


_EMPTY = np.empty(0, dtype=np.int64)
_INDEXES: dict[int, RulesIndex] = {}
_INDEX_LOCK = threading.Lock()


def forget_rules_indexes() -> None:
    """Drop this process's indexes (tests; after declared data was bulk-changed)."""
    with _INDEX_LOCK:
        _INDEXES.clear()


_REFRESHING: set[int] = set()


DECLARED_VERSION_KEY = "rules:declared:{event_id}"
REBUILD_INLINE_SECONDS = 0.2  # an outdated index built faster than this is rebuilt in the request


def declared_version(*, event_id: int) -> int:
    return cache.get(DECLARED_VERSION_KEY.format(event_id=event_id), 0)


def rules_index_outdate(*, event_id: int) -> None:
    """The event's declared data changed (call after commit): every process's index of it is out
    of date from now on."""
    count_up(cache, DECLARED_VERSION_KEY.format(event_id=event_id), timeout=None)


def rules_index(*, event: Event) -> RulesIndex:
    """The event's index: built on first use. Once of an older declared version, rebuilt at once
    if that is quick, else (like one older than the TTL) still served while one background thread
    rebuilds it (a rebuild takes about a second at 50k attendees, which no request should wait for)."""
    ttl = getattr(settings, "RULES_INDEX_SECONDS", 60)
    version = declared_version(event_id=event.pk)
    with _INDEX_LOCK:
        index = _INDEXES.get(event.pk)
        outdated = index is not None and index.version != version
        if index is None or (outdated and index.build_seconds <= REBUILD_INLINE_SECONDS):
            index = _INDEXES[event.pk] = _build_index(event, version)
        elif (outdated or time.monotonic() - index.built_at > ttl) and event.pk not in _REFRESHING:
            _REFRESHING.add(event.pk)
            threading.Thread(
                target=_refresh, args=(event, version, outdated), daemon=True, name=f"rules-index-{event.pk}"
            ).start()
        return index


def _refresh(event: Event, version: int, outdated: bool) -> None:
    try:
        index = _build_index(event, version)
        with _INDEX_LOCK:
            _INDEXES[event.pk] = index
        if outdated:
            # Lists made from the old index while this one was built: drop them once more.
            from recommendations.serving.cache import event_cache_invalidate  # serving imports backends

            event_cache_invalidate(event_id=event.pk)
    except Exception:
        logger.exception("Rebuilding the rules index of event %s failed; the old one stays", event.pk)
    finally:
        with _INDEX_LOCK:
            _REFRESHING.discard(event.pk)
        connection.close()  # the thread's own database connection


def _build_index(event: Event, version: int) -> RulesIndex:
    started = time.monotonic()
    rows = list(Attendee.objects.filter(event=event).order_by("pk").values_list("pk", "group"))
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    groups = sorted({r[1] for r in rows})
    code = {g: i for i, g in enumerate(groups)}
    group_codes = np.fromiter((code[r[1]] for r in rows), dtype=np.int64, count=len(rows))
    postings: dict[str, dict[int, np.ndarray]] = {}
    for name, (through, column) in _THROUGH.items():
        pairs = np.array(
            through._default_manager.filter(attendee__event=event).values_list("attendee_id", column), dtype=np.int64
        ).reshape(-1, 2)
        pos = np.searchsorted(ids, pairs[:, 0])
        order = np.argsort(pairs[:, 1], kind="stable")
        targets, pos = pairs[order, 1], pos[order]
        cuts = np.flatnonzero(np.diff(targets)) + 1
        postings[name] = {
            int(chunk_t[0]): np.unique(chunk_p)
            for chunk_t, chunk_p in zip(np.split(targets, cuts), np.split(pos, cuts), strict=True)
            if chunk_t.size
        }
    now = time.monotonic()
    return RulesIndex(event.pk, now, version, now - started, ids, group_codes, groups, postings)


def rank_candidates(*, index: RulesIndex, viewer: Declared, rules: RuleSet, limit: int) -> list[int]:
    """Attendee pks of the `limit` best rules candidates for `viewer`, by the same arithmetic as
    `score_pair` (weights, who-may-meet-whom, boosts), best first, ties by lower pk."""
    w = rules.weights
    scores = np.zeros(index.attendee_ids.shape[0], dtype=np.float64)
    for relation, targets, weight in (
        ("interests", viewer.interests, w[SHARED_INTEREST]),
        ("seeks", viewer.offers, w[COMPLEMENTARY]),  # they seek what the viewer offers
        ("offers", viewer.seeks, w[COMPLEMENTARY]),  # they offer what the viewer seeks
        ("planned_rooms", viewer.planned_rooms, w[PLANNED_SESSION]),
    ):
        for target in targets:
            scores[index.positions(relation, target)] += weight  # positions are unique per target
    allowed = rules.allow.get(viewer.group)
    if allowed is not None:
        ok = np.array([g in allowed for g in index.groups], dtype=bool)
        scores[~ok[index.group_codes]] = 0.0
    group_factors = rules.group_factors(viewer.group)
    if group_factors:
        by_code = np.array([group_factors.get(g, 1.0) if g else 1.0 for g in index.groups])
        scores *= by_code[index.group_codes]
    for tag, factor in rules.tag_factors(viewer.group).items():
        holders = np.union1d(index.positions("interests", tag), index.positions("offers", tag))
        scores[holders] *= factor
    me = np.searchsorted(index.attendee_ids, viewer.attendee_id)
    if me < scores.shape[0] and index.attendee_ids[me] == viewer.attendee_id:
        scores[me] = 0.0
    hits = np.flatnonzero(scores > 0)
    if hits.size > limit:
        # Keep everything tied with the limit-th score, then order exactly (score desc, pk asc).
        kth = np.partition(-scores[hits], limit - 1)[limit - 1]
        hits = hits[-scores[hits] <= kth]
    order = np.lexsort((index.attendee_ids[hits], -scores[hits]))[:limit]
    return index.attendee_ids[hits[order]].tolist()


def rules_candidates(*, event: Event, attendee: Attendee, limit: int, rules: RuleSet | None = None) -> list[Candidate]:
    """The `limit` best rules candidates for `attendee`, best first (ties: lower id first)."""
    rules = rules or load_rules(event=event)
    viewer = declared_for(attendee_ids=[attendee.pk]).get(attendee.pk)
    if viewer is None or limit <= 0:
        return []
    top = rank_candidates(index=rules_index(event=event), viewer=viewer, rules=rules, limit=limit)
    return pair_candidates(event=event, viewer=viewer, other_ids=top, rules=rules)


def pair_candidates(*, event: Event, viewer: Declared, other_ids: list[int], rules: RuleSet) -> list[Candidate]:
    """Score and explain given candidates with `score_pair`; drops those with no rules evidence.
    Keeps the order of the best score first (ties: lower id first)."""
    declared = declared_for(attendee_ids=other_ids)
    tags = set(viewer.interests | viewer.offers | viewer.seeks)
    rooms = set(viewer.planned_rooms)
    for d in declared.values():
        tags |= d.interests | d.offers | d.seeks
        rooms |= d.planned_rooms
    labels = dict(InterestTag.objects.filter(event=event, pk__in=tags).values_list("pk", "label"))
    names = dict(Room.objects.filter(event=event, pk__in=rooms).values_list("pk", "name"))
    out = []
    for pk in other_ids:
        if pk not in declared or pk == viewer.attendee_id:
            continue
        score, reasons = score_pair(viewer, declared[pk], rules=rules, tag_labels=labels, room_names=names)
        if score > 0.0:
            out.append(Candidate(attendee_id=pk, score=score, reasons=reasons))
    out.sort(key=lambda c: (-c.score, c.attendee_id))
    return out


class RulesBackend(RecommendationBackend):
    """Declared data and organizer rules; always available."""

    name = "rules"

    def candidates(self, *, event, attendee, limit: int) -> list[Candidate]:
        return rules_candidates(event=event, attendee=attendee, limit=limit)
