"""The one small interface every recommendation source implements.

A backend answers "which attendees, with what raw score and why" for one attendee. It does not
filter: consents, blocks, connections, not-relevant marks, the exposure cap and the presence boost
are applied once, by the serving path, whatever the source. Backends are loaded from dotted paths
in `settings.RECOMMENDATION_BACKENDS`, the way Django loads mail backends; the rules backend
always works and is the last fallback.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Reason:
    """One piece of evidence for a suggestion, renderable on its own.

    kind: a stable machine name ("shared_room", "same_time", "shared_interest", "complementary",
    "planned_session", "mutual_contacts", "sociable", "organizer_boost", "here_now" (in the
    viewer's room), "online", ...). Generic kinds follow personal ones on a card
    (`recommendations.serving.lists.GENERIC_REASON_KINDS`).
    text: the sentence shown to the attendee. weight: its share of the score.
    """

    kind: str
    text: str
    weight: float = 0.0


@dataclass(frozen=True)
class Candidate:
    attendee_id: int
    score: float
    reasons: tuple[Reason, ...] = field(default_factory=tuple)


class Unavailable(Exception):
    """The backend cannot answer now (no model yet, the cloud call failed); the caller falls back."""


class RecommendationBackend(ABC):
    name: str = ""

    @abstractmethod
    def candidates(self, *, event, attendee, limit: int) -> list[Candidate]:
        """Up to `limit` raw candidates, best first. Raise `Unavailable` to make the caller fall back."""

    def availability(self, *, event) -> tuple[bool, str]:
        """(available, reason if not); shown in the admin and in `manage.py check`."""
        return True, ""


def get_backend(name: str) -> RecommendationBackend:
    try:
        path = settings.RECOMMENDATION_BACKENDS[name]
    except KeyError as exc:
        raise Unavailable(f"No recommendation backend named {name!r}.") from exc
    return import_string(path)()
