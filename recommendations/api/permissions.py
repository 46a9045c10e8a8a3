"""The attendee a request acts as: one rule for the whole API, kept in `events.api.permissions`
(the privacy endpoints of `events/` need it too, and `events/` never imports this app), and a
cached form of it for the hottest read, suggestions fetched by a platform with its API key."""

import hashlib

from django.core.cache import cache
from django.http import Http404

from events.api.auth import ApiKeyUser
from events.api.permissions import NOT_FOUND, attendee_for_caller
from events.models import Attendee
from recommendations.serving.cache import stamps_now

__all__ = ["NOT_FOUND", "attendee_for_caller", "attendee_for_reader"]

# (organization of the key, event slug, external id) -> (attendee pk, event pk, stamps, attendee
# with its event, or None). The attendee is served only while the version stamps of its event and
# itself are still those read *before* it was read from the database: every change that matters
# to serving bumps one of them (consents, blocks, connections, marks, any event save, a changed
# external id, a deletion; see `recommendations.live.receivers`). So the first request of a caller
# stores the ids only, the second reads the stamps and then the row and stores both, and the rest
# read no database at all. The TTL bounds how stale the rest of the profile (used only when a
# list is recomputed) can be: a minute, like the rules engine's index of declared data.
CALLER_KEY = "rec:caller:{organization_id}:{digest}"
CALLER_TTL = 60


def _caller_key(*, organization_id: int, event_slug: str, external_id: str) -> str:
    # Hashed: the URL's parts may hold any characters and up to 128 of them (a cache key should not).
    digest = hashlib.blake2b(f"{event_slug}\0{external_id}".encode(), digest_size=16).hexdigest()
    return CALLER_KEY.format(organization_id=organization_id, digest=digest)


def _cached(key: str) -> tuple[tuple | None, tuple | None, Attendee | None]:
    """(the caller entry, the stamps now, the attendee if the entry holds it under those stamps)."""
    entry = cache.get(key)
    if entry is None:
        return None, None, None
    pk, event_id, stored_under, attendee = entry
    stamps = stamps_now(event_id=event_id, attendee_id=pk)
    current = attendee is not None and stamps is not None and stored_under == stamps
    return entry, stamps, attendee if current else None


def attendee_cached(*, organization_id: int, event_slug: str, external_id: str) -> Attendee | None:
    """The attendee an API key of `organization_id` was already granted for this URL, while nothing
    that matters to serving has changed since; None otherwise (ask `attendee_for_reader`)."""
    key = _caller_key(organization_id=organization_id, event_slug=event_slug, external_id=external_id)
    return _cached(key)[2]


def attendee_for_reader(request, *, event_slug: str, external_id: str) -> Attendee:
    """`attendee_for_caller(..., write=False)`, without a database query on most requests of an
    API key (the platform fetching suggestions for its attendees). Other callers: uncached."""
    user = request.user
    if not isinstance(user, ApiKeyUser):
        return attendee_for_caller(request, event_slug=event_slug, external_id=external_id, write=False)
    key = _caller_key(organization_id=user.organization.pk, event_slug=event_slug, external_id=external_id)
    entry, stamps, attendee = _cached(key)
    if attendee is not None:
        return attendee
    try:
        attendee = attendee_for_caller(request, event_slug=event_slug, external_id=external_id, write=False)
    except Http404:
        cache.delete(key)
        raise
    if entry is not None and entry[0] == attendee.pk and stamps is not None:
        cache.set(key, (attendee.pk, attendee.event_id, stamps, attendee), timeout=CALLER_TTL)
    else:
        cache.set(key, (attendee.pk, attendee.event_id, None, None), timeout=CALLER_TTL)
    return attendee
