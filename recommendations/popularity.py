"""Popularity: the event's most active attendees, with honest reasons. Needs no model.

The obvious list, and the last source of every list: when no trained version serves (none yet, or
the gate kept it), when the rules engine has nothing to say (nobody declared anything), and to fill
a list that the sources before it left short. It reads only the facts: an attendee's qualifying
activity (dwell seconds for room joins and content views, `NO_DWELL_SECONDS` for the rest), of
attendees who let their activity be used (`consent_training`). The serving path applies the other
filters (consents, blocks, connections, not-relevant marks), as for every source.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import Case, F, FloatField, Sum, Value, When

from events.enums import InteractionType
from events.models import Interaction

from .backends import Candidate, Reason, RecommendationBackend

NAME = "popularity"
ACTIVE_TEXT = "one of the most active here: {minutes} min in sessions"
# The ranking is the whole event's; it changes slowly and every list that falls short reads it.
CACHE_KEY = "rec:popularity:{event_id}"
CACHE_SECONDS = 60
MAX_RANKED = 1000  # longer than any list served (the batch command's 500 included)
NO_DWELL_SECONDS = 60.0  # as the local model counts a chat or a question (recommendations.local)
DWELL_TYPES = (InteractionType.JOIN_ROOM.value, InteractionType.VIEW_CONTENT.value)


def ranking(*, event_id: int) -> list[tuple[int, float]]:
    """(attendee id, active seconds), most active first (ties: lower id first), cached briefly."""
    key = CACHE_KEY.format(event_id=event_id)
    got = cache.get(key)
    if got is not None:
        return got
    seconds = Case(
        When(type__in=DWELL_TYPES, then=F("value")),
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
    cache.set(key, out, timeout=CACHE_SECONDS)
    return out


def popularity_candidates(
    *, event_id: int, exclude: set[int] | frozenset[int] = frozenset(), limit: int
) -> list[Candidate]:
    """The `limit` most active attendees not in `exclude`, scored by their active hours."""
    out = []
    for pk, seconds in ranking(event_id=event_id):
        if pk in exclude:
            continue
        minutes = max(1, round(seconds / 60))
        hours = seconds / 3600
        out.append(Candidate(pk, hours, (Reason("popular", ACTIVE_TEXT.format(minutes=minutes), hours),)))
        if len(out) >= limit:
            break
    return out


class PopularityBackend(RecommendationBackend):
    """The most active attendees; always available (an event with no activity yet gets nothing)."""

    name = NAME

    def candidates(self, *, event, attendee, limit: int) -> list[Candidate]:
        return popularity_candidates(event_id=event.pk, exclude={attendee.pk}, limit=limit)
