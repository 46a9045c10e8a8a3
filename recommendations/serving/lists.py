"""The one serving path: "suggestions for this attendee", for the API, the widget, the batch and
the dashboard alike.

    phase -> source (with fallbacks) -> post-filters -> exposure cap -> cache
          -> (on every read) "here now" boost -> first `num_results`

Sources by phase:
- cold: the rules engine.
- live: the event's backend ("local" or "personalize"), falling back to "local", then "rules", when
  a backend raises `Unavailable`. The result names the source that actually answered.
- on_demand: the batch table (source "batch"); an attendee without a batch row (registered after
  the last batch) gets the live chain.
- closed: nothing new is computed: the last batch row if there is one, else an empty list.

Post-filters are applied here, once, whatever the source (backends never filter): self; other
events; candidates who withdrew `consent_be_recommended`; a viewer who withdrew
`consent_receive_recommendations` gets an empty list with `empty_reason`; blocks in both
directions; connections in both directions *whatever their status* (a pending request is already
in flight, an accepted one is a contact, and a declined one was an answer that re-suggesting would
ignore; the one-connection-per-pair constraint means it could not be requested again anyway);
the viewer's not-relevant marks. `consent_training` ("use my activity") filters the sources built
from activity (a trained model, Personalize, the batch): a candidate who withdrew it is left out of
their lists, and a viewer who withdrew it is served by the rules engine (declared data only). The
next training leaves their interactions out anyway (`recommendations.backends.local.inputs.load_event_data`);
the filter makes the withdrawal take effect at once instead of at that training.

The cache holds the filtered, capped pool (up to `POOL_SIZE`) per attendee with the version stamps
it was computed under (`recommendations.serving.cache`), so every invalidation is immediate. The
"here now" boost is applied after the cache, on every read, because presence changes by the
second and lists by the quarter hour.
"""

import functools
from dataclasses import dataclass, field
from typing import TypedDict

from django.core.cache import cache
from django.db import connection
from django.utils.translation import gettext_noop

from events.enums import Phase
from events.models import Attendee, Block, Connection, Event, NotRelevant, Room
from events.presence import PRESENCE_CACHE_KEY, presence_publish
from recommendations.backends import Candidate, Reason, Unavailable, get_backend
from recommendations.backends.popularity import NAME as POPULARITY
from recommendations.backends.popularity import served_as
from recommendations.backends.rules import allowed_groups
from recommendations.models import BatchRecommendation, ModelVersion
from recommendations.serving.cache import ATTENDEE_VERSION_KEY, cached_list_get, cached_list_set
from recommendations.serving.exposure import exposure_demote

MAX_RESULTS = 50
# The cached pool holds the longest list served; the presence boost reorders within it. (Twice
# as deep cost half again as much per cache miss, to lift people from ranks nobody reads.)
POOL_SIZE = MAX_RESULTS
# Lists from the batch table (and closed events) live until the next batch bumps the event stamp.
BATCH_CACHE_SECONDS = 24 * 3600

SOURCE_RULES = "rules"
SOURCE_LOCAL = "local"
SOURCE_BATCH = "batch"
SOURCE_POPULARITY = POPULARITY
# Full lists: what the answering source leaves short is filled by these, in order, each entry
# marked with the source that gave it (never when the event is closed: nothing new is computed).
FILL_SOURCES = (SOURCE_RULES, SOURCE_POPULARITY)

# "Here now": a candidate in the viewer's room right now is the easiest meeting there is; one
# merely online is still easier than one who is not. Multiplicative, so it reorders among
# comparable candidates without lifting a weak match over a strong one.
HERE_NOW_SAME_ROOM_BOOST = 0.5
HERE_NOW_ONLINE_BOOST = 0.2
HERE_NOW_SAME_ROOM_TEXT = gettext_noop("In the same room as you right now")
HERE_NOW_IN_ROOM_TEXT = gettext_noop("In '{room}' with you right now")
HERE_NOW_ONLINE_TEXT = gettext_noop("Online now")
# Someone in the viewer's room who is not in their pool at all (no declared or learned reason yet)
# is still the easiest meeting there is: up to this many join the list, in its last visible slots,
# so they land among the suggestions without pushing out the strong matches. Capped, so that a
# keynote with 500 people does not flood the list.
HERE_NOW_ADDED_MAX = 3
# Reasons that say something about the candidate alone, not about the two of them: a card leads
# with a personal reason ("you both spent 41 min in ...") whenever it has one, and these follow.
GENERIC_REASON_KINDS = frozenset({"online", "sociable", "active", "popular", "attending", "organizer_boost"})

NO_CONSENT_RECEIVE = gettext_noop("This attendee has chosen not to receive suggestions.")
EVENT_CLOSED = gettext_noop("The event is closed: no new suggestions are computed.")
# Why a list is empty, for machines: the attendee's own widget words it for them ("You have turned
# suggestions off", with the way back), where `empty_reason` speaks to a platform about them.
EMPTY_RECEIVE_OFF = "receive_off"
EMPTY_CLOSED = "closed"


@dataclass
class Suggestion:
    attendee_id: int
    external_id: str
    display_name: str
    headline: str
    company: str
    score: float
    reasons: list[dict]
    here_now: bool = False
    source: str = ""  # the source that suggested this entry (see FILL_SOURCES)


class _PersonRow(TypedDict):
    """The display fields of a candidate, as `_consenting` reads them."""

    pk: int
    external_id: str
    display_name: str
    headline: str
    company: str


@dataclass
class Recommendations:
    items: list[Suggestion]
    source: str
    phase: str
    model_version_id: int | None = None
    model_version: int | None = None
    cached: bool = False
    empty_reason: str = ""
    empty_code: str = ""  # EMPTY_RECEIVE_OFF, EMPTY_CLOSED or "" (see empty_reason)
    extra: dict = field(default_factory=dict)


def recommendations_for(
    *,
    attendee: Attendee,
    num_results: int = 10,
    use_cache: bool = True,
    phase: str | None = None,
    record_exposure: bool = True,
    boost_presence: bool = True,
) -> Recommendations:
    """Suggestions for `attendee`, best first, at most `num_results` (1..MAX_RESULTS).

    `phase` overrides the event's phase (the batch computes on-demand lists with the live
    sources); an override, like `use_cache=False`, bypasses the cache entirely. `record_exposure`
    off leaves the exposure counters alone (the batch caps its whole table at once instead), and
    `boost_presence` off leaves presence out (a stored list must not freeze who was here then)."""
    event: Event = attendee.event
    effective_phase = phase or event.phase
    if not attendee.consent_receive_recommendations:
        return Recommendations(
            items=[], source="", phase=effective_phase, empty_reason=NO_CONSENT_RECEIVE, empty_code=EMPTY_RECEIVE_OFF
        )

    payload: dict | None = None
    stamps = None
    presence_key = PRESENCE_CACHE_KEY.format(event_id=event.pk)
    if use_cache and phase is None:
        # The stamps, the list and who is here now, in one round trip.
        stamps, payload, got = cached_list_get(event_id=event.pk, attendee_id=attendee.pk, also=[presence_key])
        presence = got.get(presence_key)
    else:
        presence = cache.get(presence_key)
    if presence is None:  # evicted, expired or never written: rebuilt from the open visits
        presence = presence_publish(event_id=event.pk)
    cached = payload is not None
    if payload is None:
        payload = _compute(event=event, attendee=attendee, phase=effective_phase, record_exposure=record_exposure)
        if stamps is not None:
            ttl = _ttl(event=event, source=payload["source"])
            cached_list_set(attendee_id=attendee.pk, stamps=stamps, value=payload, timeout=ttl)

    items = [Suggestion(**item) for item in payload["items"]]
    source = payload["source"]
    filled_to = payload.get("filled_to", len(items))
    if len(items) < num_results and num_results > filled_to and payload["phase"] != Phase.CLOSED:
        # Full lists, filled on read and only as far as asked, then kept with the cached pool
        # (WHY not in every pool on a miss: the model's live lists hold 25, so every miss would
        # pay for the rules and popularity queries, while most reads ask for 10).
        primary = payload["items"]
        items = _filled(event=event, attendee=attendee, items=items, source=source, num_results=num_results)
        if items and not primary:
            source = items[0].source  # the source that answered had nothing to say
        if stamps is not None:
            filled = [_item_dict(item) for item in items]
            value = payload | {"items": filled, "filled_to": num_results, "source": source}
            cached_list_set(
                attendee_id=attendee.pk, stamps=stamps, value=value, timeout=_ttl(event=event, source=source)
            )
    if boost_presence and presence:
        items = _boost_present(
            event=event, viewer=attendee, items=items, present=dict(presence), num_results=num_results
        )
    items = items[:num_results]
    for item in items:
        item.reasons = personal_first(item.reasons)
    return Recommendations(
        items=items,
        source=source,
        phase=payload["phase"],
        model_version_id=payload["model_version_id"],
        model_version=payload["model_version"],
        cached=cached,
        empty_reason=payload["empty_reason"],
        empty_code=EMPTY_CLOSED if payload["empty_reason"] == EVENT_CLOSED else "",
    )


def personal_first(reasons: list[dict]) -> list[dict]:
    """`reasons` with the personal ones first and the generic ones (GENERIC_REASON_KINDS) after,
    each group in its own order (by weight, the here-now reason first): the first reasons are
    the ones a card shows, and "online now · well connected" said nothing about the two people
    while "you both spent 41 min in ..." sat hidden behind them."""
    return sorted(reasons, key=lambda r: r["kind"] in GENERIC_REASON_KINDS)


def _ttl(*, event: Event, source: str) -> int:
    if source == SOURCE_RULES:
        return event.rules_cache_seconds
    if source == SOURCE_BATCH or event.phase == Phase.CLOSED:
        return BATCH_CACHE_SECONDS
    return event.model_cache_seconds


def source_chain(*, event: Event, phase: str) -> list[str]:
    """The sources to try, in order, for a phase."""
    if phase == Phase.COLD:
        return [SOURCE_RULES]
    live = list(dict.fromkeys([event.backend, SOURCE_LOCAL, SOURCE_RULES]))
    if phase == Phase.LIVE:
        return live
    if phase == Phase.ON_DEMAND:
        return [SOURCE_BATCH, *live]
    return [SOURCE_BATCH]  # closed: the last batch, never a new computation


@functools.cache
def _excluded_sql() -> str:
    block, conn, mark = Block._meta.db_table, Connection._meta.db_table, NotRelevant._meta.db_table
    return (
        f"SELECT blocker_id, blocked_id FROM {block} WHERE blocker_id = %s OR blocked_id = %s "
        f"UNION ALL SELECT requester_id, recipient_id FROM {conn} WHERE requester_id = %s OR recipient_id = %s "
        f"UNION ALL SELECT attendee_id, target_id FROM {mark} WHERE attendee_id = %s"
    )


def excluded_ids(*, attendee: Attendee) -> set[int]:
    """Attendees never to suggest to `attendee`: self, blocks both ways, connections of any status
    both ways, and their not-relevant marks. One round trip (a UNION of five index lookups), in
    plain SQL: it runs on every cache miss, and compiling the equivalent ORM union took longer
    than PostgreSQL took to answer it."""
    pk = attendee.pk
    out = {pk}
    with connection.cursor() as cursor:
        cursor.execute(_excluded_sql(), [pk, pk, pk, pk, pk])
        for a, b in cursor.fetchall():
            out.add(a)
            out.add(b)
    return out


def _batch_candidates(*, attendee: Attendee) -> tuple[list[Candidate], ModelVersion | None]:
    row = BatchRecommendation.objects.filter(attendee=attendee).select_related("model_version").first()
    if row is None:
        raise Unavailable("No batch row for this attendee yet.")
    candidates = [
        Candidate(
            attendee_id=item["attendee_id"],
            score=float(item["score"]),
            reasons=tuple(Reason(**reason) for reason in item.get("reasons", [])),
        )
        for item in row.items
    ]
    return candidates, row.model_version


def _compute(*, event: Event, attendee: Attendee, phase: str, record_exposure: bool) -> dict:
    excluded = excluded_ids(attendee=attendee)
    source = ""
    candidates: list[Candidate] = []
    model_version: ModelVersion | None = None
    chain = source_chain(event=event, phase=phase)
    if not attendee.consent_training:
        # Their own activity may not be used: only declared data (rules) speaks for them.
        chain = [name for name in chain if name == SOURCE_RULES]
    for name in chain:
        try:
            if name == SOURCE_BATCH:
                candidates, model_version = _batch_candidates(attendee=attendee)
            else:
                # Ask for enough that the filters below still leave a full pool.
                candidates = get_backend(name).candidates(
                    event=event, attendee=attendee, limit=POOL_SIZE + len(excluded)
                )
                if name != SOURCE_RULES:
                    model_version = ModelVersion.objects.filter(
                        event=event, status=ModelVersion.Status.PUBLISHED
                    ).first()
        except Unavailable:
            continue
        source = name
        if name == SOURCE_LOCAL and model_version is not None:
            source = served_as(model_version)  # the version may be the popularity baseline
        break

    rows: dict[int, _PersonRow] = {}
    ranked = _consenting(
        event,
        candidates,
        excluded,
        rows,
        activity_based=source not in ("", SOURCE_RULES),
        allowed=allowed_groups(event_id=event.pk, viewer_group=attendee.group),
    )
    origin = dict.fromkeys((c.attendee_id for c in ranked), source)
    empty_reason = EVENT_CLOSED if phase == Phase.CLOSED and not source else ""
    ids = [c.attendee_id for c in ranked]
    if record_exposure and ids:
        ids = exposure_demote(event=event, viewer_id=attendee.pk, ranked_ids=ids)
    ranked_by_id = {c.attendee_id: c for c in ranked}
    items = []
    for pk in ids:
        c, row = ranked_by_id[pk], rows[pk]
        # Plain dicts (the fields of `Suggestion`), built by hand: `asdict` deep-copies, and at a
        # hundred items per list it was a tenth of a cache miss.
        items.append(
            {
                "attendee_id": pk,
                "external_id": row["external_id"],
                "display_name": row["display_name"],
                "headline": row["headline"],
                "company": row["company"],
                "score": round(float(c.score), 6),
                "reasons": [{"kind": r.kind, "text": r.text, "weight": r.weight} for r in c.reasons],
                "source": origin[pk],
            }
        )
    return {
        "items": items,
        "source": source,
        "phase": phase,
        "model_version_id": model_version.pk if model_version else None,
        "model_version": model_version.number if model_version else None,
        "empty_reason": empty_reason,
    }


def _consenting(
    event: Event,
    candidates: list[Candidate],
    excluded: set[int],
    rows: dict[int, _PersonRow],
    *,
    activity_based: bool,
    allowed: frozenset[str] | None,
) -> list[Candidate]:
    """`candidates` without the excluded ones, those who do not consent and those the organizer's
    "who may meet whom" rules keep from the viewer (`allowed`: the groups the viewer may meet, None
    for all), best first (ties: lower id first), at most POOL_SIZE; `rows` gets the display fields
    of those kept.

    Other events, withdrawn consent and groups are checked against the database, not trusted from
    the source: a batch row, a model or a remote campaign may predate the change, and only the
    rules engine knows the rules. A source built from activity (`activity_based`) also drops
    candidates who withdrew `consent_training`."""
    by_id = {c.attendee_id: c for c in candidates if c.attendee_id not in excluded}
    if not by_id:
        return []
    consenting = Attendee.objects.filter(event=event, pk__in=by_id, consent_be_recommended=True)
    if allowed is not None:
        consenting = consenting.filter(group__in=allowed)
    if activity_based:
        consenting = consenting.filter(consent_training=True)  # suggested from activity they withdrew
    for row in consenting.values("pk", "external_id", "display_name", "headline", "company"):
        rows[row["pk"]] = row
    kept = (c for c in by_id.values() if c.attendee_id in rows)
    return sorted(kept, key=lambda c: (-c.score, c.attendee_id))[:POOL_SIZE]


def _item_dict(item: Suggestion) -> dict:
    return {
        "attendee_id": item.attendee_id,
        "external_id": item.external_id,
        "display_name": item.display_name,
        "headline": item.headline,
        "company": item.company,
        "score": item.score,
        "reasons": item.reasons,
        "source": item.source,
    }


def _filled(
    *, event: Event, attendee: Attendee, items: list[Suggestion], source: str, num_results: int
) -> list[Suggestion]:
    """`items`, filled up to `num_results` from FILL_SOURCES in order (each entry marked with its
    source), through the same filters as every source. A filled entry scores below every entry
    before it, in its source's order, so that the presence boost keeps the sources in sequence
    unless it means to move one."""
    out = list(items)
    excluded = _excluded_ids_cached(attendee=attendee) | {item.attendee_id for item in out}
    allowed = allowed_groups(event_id=event.pk, viewer_group=attendee.group)
    rows: dict[int, _PersonRow] = {}
    for name in FILL_SOURCES:
        wanted = num_results - len(out)
        if wanted <= 0:
            break
        if name == source:
            continue
        try:
            more = get_backend(name).candidates(event=event, attendee=attendee, limit=wanted + len(excluded))
        except Unavailable:
            continue
        more = _consenting(event, more, excluded, rows, activity_based=name == SOURCE_POPULARITY, allowed=allowed)[
            :wanted
        ]
        floor = min((item.score for item in out if item.score > 0), default=1.0)
        for i, c in enumerate(more):
            row = rows[c.attendee_id]
            out.append(
                Suggestion(
                    attendee_id=c.attendee_id,
                    external_id=row["external_id"],
                    display_name=row["display_name"],
                    headline=row["headline"],
                    company=row["company"],
                    score=round(floor * (1.0 - (i + 1) / (len(more) + 1)) * 0.999, 6),
                    reasons=[{"kind": r.kind, "text": r.text, "weight": r.weight} for r in c.reasons],
                    source=name,
                )
            )
            excluded.add(c.attendee_id)
    return out


# Read on every "here now" read of a viewer in a room (the live push does many): a rename shows
# within the TTL.
ROOM_NAME_KEY = "rec:room-name:{room_id}"
ROOM_NAME_TTL = 600
EXCLUDED_KEY = "rec:excl:{attendee_id}:{attendee_version}"


def _excluded_ids_cached(*, attendee: Attendee) -> set[int]:
    """`excluded_ids`, cached under the attendee's version stamp: every change that can alter it (a
    block, a connection, a not-relevant mark of theirs) bumps that stamp, so the cache is never stale."""
    stamp = cache.get(ATTENDEE_VERSION_KEY.format(attendee_id=attendee.pk))
    if stamp is None:
        return excluded_ids(attendee=attendee)
    key = EXCLUDED_KEY.format(attendee_id=attendee.pk, attendee_version=stamp)
    value = cache.get(key)
    if value is None:
        value = excluded_ids(attendee=attendee)
        cache.set(key, value, timeout=BATCH_CACHE_SECONDS)
    return value


def _same_room_newcomers(
    *, event: Event, viewer: Attendee, present: dict, viewer_room: int, items: list[Suggestion]
) -> list[Suggestion]:
    """Attendees in the viewer's room now who are not in the list, filtered like the pool (self,
    blocks, connections, not-relevant marks, consent, who may meet whom), first by arrival order,
    at most HERE_NOW_ADDED_MAX; scored and placed by `_boost_present`."""
    listed = {item.attendee_id for item in items}
    ids = [pk for pk, room in present.items() if room == viewer_room and pk not in listed and pk != viewer.pk]
    if not ids:
        return []
    excluded = _excluded_ids_cached(attendee=viewer)
    ids = [pk for pk in ids if pk not in excluded]
    people = Attendee.objects.filter(event=event, pk__in=ids, consent_be_recommended=True)
    allowed = allowed_groups(event_id=event.pk, viewer_group=viewer.group)
    if allowed is not None:
        people = people.filter(group__in=allowed)
    rows = {row["pk"]: row for row in people.values("pk", "external_id", "display_name", "headline", "company")}
    return [
        Suggestion(
            attendee_id=pk,
            external_id=rows[pk]["external_id"],
            display_name=rows[pk]["display_name"],
            headline=rows[pk]["headline"],
            company=rows[pk]["company"],
            score=0.0,
            reasons=[],
            source="here_now",
            here_now=True,
        )
        for pk in [pk for pk in ids if pk in rows][:HERE_NOW_ADDED_MAX]
    ]


def _boost_present(
    *, event: Event, viewer: Attendee, items: list[Suggestion], present: dict[int, int | None], num_results: int
) -> list[Suggestion]:
    """Boost candidates online now (see `recommendations.serving.cache.present_attendee_ids` for the
    presence entry's format), most for those in the viewer's own room; people in the viewer's room
    who are not in the list join it (at most HERE_NOW_ADDED_MAX), in the last slots of the first
    `num_results`, each with the score of the entry it displaces. WHY slots, not a score: placed by
    a score just above the last visible entry, only one of them was ever visible, so in a room of
    four the third and fourth person never appeared, nor did their arrival reach the widgets (no
    visible change, no push)."""
    viewer_room = present.get(viewer.pk)
    same_room_text = HERE_NOW_SAME_ROOM_TEXT
    newcomers: list[Suggestion] = []
    if viewer_room is not None:
        newcomers = _same_room_newcomers(
            event=event, viewer=viewer, present=present, viewer_room=viewer_room, items=items
        )
        room_name = cache.get_or_set(
            ROOM_NAME_KEY.format(room_id=viewer_room),
            lambda: Room.objects.filter(event=event, pk=viewer_room).values_list("name", flat=True).first() or "",
            timeout=ROOM_NAME_TTL,
        )
        if room_name:
            same_room_text = HERE_NOW_IN_ROOM_TEXT.format(room=room_name)
    boosted = False
    for item in items:
        if item.attendee_id not in present:
            continue
        same_room = viewer_room is not None and present[item.attendee_id] == viewer_room
        boost = HERE_NOW_SAME_ROOM_BOOST if same_room else HERE_NOW_ONLINE_BOOST
        extra = item.score * boost
        item.score = round(item.score + extra, 6)
        item.reasons = [
            {
                "kind": "here_now" if same_room else "online",
                "text": same_room_text if same_room else HERE_NOW_ONLINE_TEXT,
                "weight": round(extra, 6),
            },
            *item.reasons,
        ]
        item.here_now = True
        boosted = True
    if boosted:
        # Stable: equal scores keep the cached (exposure-capped) order.
        items.sort(key=lambda s: -s.score)
    if newcomers:
        at = max(0, min(len(items), max(num_results, 1) - len(newcomers)))
        score = items[at].score if at < len(items) else (items[-1].score if items else 1.0)
        for item in newcomers:
            item.score = score
            item.reasons = [{"kind": "here_now", "text": same_room_text, "weight": score}]
        items = items[:at] + newcomers + items[at:]
    return items
