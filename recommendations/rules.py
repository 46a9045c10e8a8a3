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
finds the best candidates among all attendees with one aggregate SQL query over the M2M tables
(indexed by tag and by room), then recomputes the top few with `score_pair` for their reasons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection

from events.models import Attendee, Event, InterestTag, Room

from .backends import Candidate, Reason, RecommendationBackend
from .models import MatchmakingRule

SHARED_INTEREST = MatchmakingRule.Signal.SHARED_INTEREST.value
COMPLEMENTARY = MatchmakingRule.Signal.COMPLEMENTARY.value
PLANNED_SESSION = MatchmakingRule.Signal.PLANNED_SESSION.value
DEFAULT_WEIGHTS = {SHARED_INTEREST: 1.0, COMPLEMENTARY: 2.0, PLANNED_SESSION: 1.0}

# Reason texts (tests reuse them).
SHARED_INTERESTS_TEXT = "shared interests: {labels}"
SHARED_INTEREST_TEXT = "shared interest: {labels}"
YOU_SEEK_TEXT = "you seek {label}, they offer it"
THEY_SEEK_TEXT = "they seek {label}, you offer it"
PLANNED_TEXT = "you both plan to attend {names}"
BOOST_GROUP_TEXT = "the organizers highlight {group} attendees"
BOOST_TAG_TEXT = "the organizers highlight {label}"


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


def load_rules(*, event: Event) -> RuleSet:
    weights = dict(DEFAULT_WEIGHTS)
    allow: dict[str, set[str]] = {}
    group_boosts, tag_boosts = [], []
    for rule in MatchmakingRule.objects.filter(event=event, enabled=True).order_by("id"):
        if rule.kind == MatchmakingRule.Kind.WEIGHT:
            weights[rule.signal] = rule.value
        elif rule.kind == MatchmakingRule.Kind.ALLOW:
            allow.setdefault(rule.from_group, set()).add(rule.to_group)
        elif rule.kind == MatchmakingRule.Kind.BOOST_GROUP:
            group_boosts.append((rule.from_group, rule.to_group, rule.value))
        elif rule.kind == MatchmakingRule.Kind.BOOST_TAG:
            tag_boosts.append((rule.from_group, rule.tag_id, rule.value))
    return RuleSet(
        weights=weights,
        allow={g: frozenset(s) for g, s in allow.items()},
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
        for attendee_id, target in through.objects.filter(attendee_id__in=ids).values_list("attendee_id", column):
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


def _table(name: str) -> str:
    return connection.ops.quote_name(_THROUGH[name][0]._meta.db_table)


def aggregate_scores(*, viewer: Declared, rules: RuleSet) -> list[tuple[int, str, float]]:
    """(attendee id, group, unboosted score) of every attendee sharing a signal with `viewer`.

    One query: each branch reads the M2M table through its tag/room index for the viewer's few
    tags, so the work is the size of the matching lists, not of the event."""
    w = rules.weights
    branches: list[str] = []
    params: list = []

    def branch(table: str, column: str, ids: frozenset[int], weight: float) -> None:
        if ids and weight:
            marks = ", ".join(["%s"] * len(ids))
            branches.append(f"SELECT attendee_id AS other, %s AS w FROM {_table(table)} WHERE {column} IN ({marks})")
            params.extend([weight, *sorted(ids)])

    branch("interests", "interesttag_id", viewer.interests, w[SHARED_INTEREST])
    branch("seeks", "interesttag_id", viewer.offers, w[COMPLEMENTARY])  # they seek what I offer
    branch("offers", "interesttag_id", viewer.seeks, w[COMPLEMENTARY])  # they offer what I seek
    branch("planned_rooms", "room_id", viewer.planned_rooms, w[PLANNED_SESSION])
    if not branches:
        return []
    attendee_table = connection.ops.quote_name(Attendee._meta.db_table)
    group_column = connection.ops.quote_name("group")
    where = ["ev.other <> %s"]
    params.append(viewer.attendee_id)
    allowed = rules.allow.get(viewer.group)
    if allowed is not None:
        where.append(f"a.{group_column} IN ({', '.join(['%s'] * len(allowed))})")
        params.extend(sorted(allowed))
    sql = (
        f"SELECT ev.other, a.{group_column}, SUM(ev.w) FROM ({' UNION ALL '.join(branches)}) ev "
        f"JOIN {attendee_table} a ON a.id = ev.other WHERE {' AND '.join(where)} "
        f"GROUP BY ev.other, a.{group_column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(pk), group, float(score)) for pk, group, score in cursor.fetchall()]


def _tag_holders(tag_ids: Iterable[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    ids = list(tag_ids)
    for name in ("interests", "offers"):
        through = _THROUGH[name][0]
        for attendee_id, tag in through.objects.filter(interesttag_id__in=ids).values_list(
            "attendee_id", "interesttag_id"
        ):
            out.setdefault(tag, set()).add(attendee_id)
    return out


def rules_candidates(*, event: Event, attendee: Attendee, limit: int, rules: RuleSet | None = None) -> list[Candidate]:
    """The `limit` best rules candidates for `attendee`, best first (ties: lower id first)."""
    rules = rules or load_rules(event=event)
    viewer = declared_for(attendee_ids=[attendee.pk]).get(attendee.pk)
    if viewer is None or limit <= 0:
        return []
    rows = aggregate_scores(viewer=viewer, rules=rules)
    group_factors = rules.group_factors(viewer.group)
    tag_factors = rules.tag_factors(viewer.group)
    holders = _tag_holders(tag_factors) if tag_factors else {}
    ranked = []
    for pk, group, base in rows:
        factor = group_factors.get(group, 1.0) if group else 1.0
        for tag, f in tag_factors.items():
            if pk in holders.get(tag, ()):
                factor *= f
        ranked.append((-base * factor, pk))
    ranked.sort()
    top = [pk for _, pk in ranked[:limit]]
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
