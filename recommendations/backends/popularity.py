"""Popularity: the event's most active attendees, with honest reasons. Needs no model.

The obvious list, and the last source of every list: when no trained version serves (none yet, or
the gate kept it), when the rules engine has nothing to say (nobody declared anything), and to fill
a list that the sources before it left short. It reads only the facts: an attendee's qualifying
activity, counted as the local model counts it (dwell seconds for room joins and content views,
`recommendations.backends.local.inputs.NO_DWELL_SECONDS` for the rest), of
attendees who let their activity be used (`consent_training`). The serving path applies the other
filters (consents, blocks, connections, not-relevant marks), as for every source.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import Case, F, FloatField, Sum, Value, When
from django.utils.translation import gettext_noop

from events.models import Attendee, Interaction
from recommendations.backends import Candidate, Reason, RecommendationBackend
from recommendations.backends.local.inputs import DWELL_TYPES, NO_DWELL_SECONDS
from recommendations.backends.local.loaded import BACKEND_NAME as LOCAL
from recommendations.models import ModelVersion

NAME = "popularity"
ACTIVE_TEXT = gettext_noop("one of the most active here: {minutes} min in sessions")
ATTENDING_TEXT = gettext_noop("also at this event")
# The ranking is the whole event's; it changes slowly and every list that falls short reads it.
CACHE_KEY = "rec:popularity:{event_id}"
CACHE_SECONDS = 60
MAX_RANKED = 1000  # longer than any list served (the batch command's 500 included)


def served_as(version: ModelVersion) -> str:
    """The source a version's suggestions are shown as: "popularity" when the event's own split
    chose a popularity baseline (the engine then ranks by sociability or activity alone, and says
    so in its reasons), else "local"."""
    ranker = (version.metrics or {}).get("ranker") or {}
    if ranker.get("kind") == "baseline" and str(ranker.get("name", "")).startswith("popularity"):
        return NAME
    return LOCAL


def ranking(*, event_id: int) -> list[tuple[int, float]]:
    """(attendee id, active seconds), most active first (ties: lower id first), then, while the
    list is shorter than MAX_RANKED, everyone else of the event with 0 seconds in registration
    order (WHY: a list must be full when enough people consent, even before anyone did anything:
    at the start of an event nobody is active, and someone who declared nothing has no rules
    match). Cached briefly."""
    key = CACHE_KEY.format(event_id=event_id)
    got = cache.get(key)
    if got is not None:
        return got
    seconds = Case(
        When(type__in=sorted(DWELL_TYPES), then=F("value")),
        default=Value(NO_DWELL_SECONDS),
        output_field=FloatField(),
    )
    rows = (
        Interaction.objects.filter(event_id=event_id, qualifies=True, attendee__consent_training=True)
        .values("attendee_id")
        .annotate(active=Sum(seconds))
        .filter(active__gt=0)
        .order_by("-active", "attendee_id")[:MAX_RANKED]
    )
    out = [(row["attendee_id"], float(row["active"])) for row in rows]
    if len(out) < MAX_RANKED:
        active = {pk for pk, _ in out}
        rest = Attendee.objects.filter(event_id=event_id).order_by("pk").values_list("pk", flat=True)
        out += [(pk, 0.0) for pk in rest[: MAX_RANKED + len(active)] if pk not in active][: MAX_RANKED - len(out)]
    cache.set(key, out, timeout=CACHE_SECONDS)
    return out


def popularity_candidates(
    *, event_id: int, exclude: set[int] | frozenset[int] = frozenset(), limit: int
) -> list[Candidate]:
    """The `limit` most active attendees not in `exclude`, scored by their active hours; then the
    ones not active yet, who say so."""
    out = []
    for pk, seconds in ranking(event_id=event_id):
        if pk in exclude:
            continue
        if seconds > 0:
            hours = seconds / 3600
            reason = Reason("popular", ACTIVE_TEXT.format(minutes=max(1, round(seconds / 60))), hours)
            out.append(Candidate(pk, hours, (reason,)))
        else:
            out.append(Candidate(pk, 0.0, (Reason("attending", ATTENDING_TEXT, 0.0),)))
        if len(out) >= limit:
            break
    return out


class PopularityBackend(RecommendationBackend):
    """The most active attendees, then the event's other attendees; always available."""

    name = NAME

    def candidates(self, *, event, attendee, limit: int) -> list[Candidate]:
        return popularity_candidates(event_id=event.pk, exclude={attendee.pk}, limit=limit)
