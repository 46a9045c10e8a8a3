"""Questionnaire hydration: pre-event answers become inferred interactions, so that matchmaking can
start before anyone has joined a room.

Each attendee's declared interests, offers and seeks become one `questionnaire` interaction per
distinct interest tag (the tag is the context: everyone who chose it "joined" it), and each planned
room one `questionnaire` interaction with that room. Rows have `source=questionnaire` and stable
client event ids (`q:<attendee pk>:<kind>:<context pk>`), so hydrating twice adds nothing; an answer
withdrawn since the last run loses its row (these rows are inferred from answers, not observed facts).

Their weight fades as the attendee's real behaviour arrives (see `questionnaire_weight`): declared
interests are the best guess before the event and a weak one once we can see what people do.
Training weighs each questionnaire row so (`recommendations.backends.local.inputs.load_event_data`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from .enums import DEFAULT_INTERACTION_WEIGHTS, InteractionSource, InteractionType
from .models import Attendee, Event, Interaction
from .outbox import InteractionRow, interactions_insert

if TYPE_CHECKING:
    import numpy as np

# After this many qualifying live interactions of an attendee, their questionnaire rows weigh half
# as much as at the start; after twice as many, a quarter. Ten is about one morning of sessions and
# content at a typical event: enough observed behaviour to outweigh a form filled in weeks before.
QUESTIONNAIRE_HALF_LIFE = 10.0


@overload
def questionnaire_weight(n_live_qualifying: int, *, base: float = ..., half_life: float = ...) -> float: ...


@overload
def questionnaire_weight(
    n_live_qualifying: "np.ndarray", *, base: float = ..., half_life: float = ...
) -> "np.ndarray": ...


def questionnaire_weight(
    n_live_qualifying: "int | np.ndarray",
    *,
    base: float = DEFAULT_INTERACTION_WEIGHTS[InteractionType.QUESTIONNAIRE.value],
    half_life: float = QUESTIONNAIRE_HALF_LIFE,
) -> "float | np.ndarray":
    """Weight of one questionnaire interaction of an attendee who has `n_live_qualifying` qualifying
    non-questionnaire interactions:

        w(n) = base * 2 ** (-n / half_life)

    `base` is the event's weight for the questionnaire type (`Event.interaction_weight`, 0.5 by
    default). It halves every `half_life` real interactions and never reaches zero, so an attendee
    who only answered the form keeps their declared profile. `n_live_qualifying` may be a numpy
    array (training weighs all rows at once)."""
    n = n_live_qualifying * (n_live_qualifying > 0)  # max(n, 0), for ints and arrays alike
    return base * 2.0 ** (-n / half_life)


def live_qualifying_counts(*, event: Event, attendee_ids: Iterable[int] | None = None) -> dict[int, int]:
    """{attendee id: qualifying interactions not from the questionnaire}, for attendees with any."""
    qs = Interaction.objects.filter(event=event, qualifies=True)
    if attendee_ids is not None:
        qs = qs.filter(attendee_id__in=list(attendee_ids))
    return dict(
        qs.exclude(source=InteractionSource.QUESTIONNAIRE)
        .values("attendee_id")
        .annotate(n=Count("id"))
        .values_list("attendee_id", "n")
    )


def questionnaire_weights(*, event: Event) -> dict[int, float]:
    """{attendee id: current weight of their questionnaire rows} for every attendee of `event`."""
    base = event.interaction_weight(InteractionType.QUESTIONNAIRE)
    counts = live_qualifying_counts(event=event)
    return {
        pk: questionnaire_weight(counts.get(pk, 0), base=base)
        for pk in Attendee.objects.filter(event=event).values_list("pk", flat=True)
    }


@dataclass
class HydrationStats:
    created: int = 0
    removed: int = 0
    unchanged: int = 0


def _client_event_id(attendee_id: int, kind: str, context_id: int) -> str:
    return f"q:{attendee_id}:{kind}:{context_id}"


@transaction.atomic
def questionnaire_hydrate(*, event: Event, attendee_ids: Iterable[int] | None = None) -> HydrationStats:
    """Bring the questionnaire interactions of `event` (or of `attendee_ids` only) in line with the
    attendees' current answers. Set-based: four reads, one insert, one delete, whatever the count."""
    scope = Q(attendee__event=event)
    if attendee_ids is not None:
        scope &= Q(attendee_id__in=list(attendee_ids))
    wanted: dict[str, tuple[int, str, int]] = {}
    for relation in ("interests", "offers", "seeks"):
        through = getattr(Attendee, relation).through
        for attendee_id, tag_id in through.objects.filter(scope).values_list("attendee_id", "interesttag_id"):
            wanted[_client_event_id(attendee_id, "interest", tag_id)] = (attendee_id, "interest", tag_id)
    for attendee_id, room_id in Attendee.planned_rooms.through.objects.filter(scope).values_list(
        "attendee_id", "room_id"
    ):
        wanted[_client_event_id(attendee_id, "room", room_id)] = (attendee_id, "room", room_id)

    existing = Interaction.objects.filter(event=event, source=InteractionSource.QUESTIONNAIRE)
    if attendee_ids is not None:
        existing = existing.filter(attendee_id__in=list(attendee_ids))
    have = dict(existing.values_list("client_event_id", "pk"))
    stale = [pk for key, pk in have.items() if key not in wanted]
    removed = Interaction.objects.filter(pk__in=stale).delete()[1].get(Interaction._meta.label, 0) if stale else 0

    now = timezone.now()
    rows = [
        InteractionRow(
            attendee_id=attendee_id,
            room_id=context_id if kind == "room" else None,
            content_id=None,
            interest_id=context_id if kind == "interest" else None,
            type=InteractionType.QUESTIONNAIRE,
            value=None,
            occurred_at=now,
            client_event_id=key,
            qualifies=True,
        )
        for key, (attendee_id, kind, context_id) in sorted(wanted.items())
        if key not in have
    ]
    inserted = interactions_insert(event_id=event.pk, rows=rows, source=InteractionSource.QUESTIONNAIRE)
    return HydrationStats(created=len(inserted), removed=removed, unchanged=len(wanted) - len(rows))
