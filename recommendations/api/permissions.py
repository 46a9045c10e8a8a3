"""The attendee a request acts as: one rule for the whole API, kept in `events.api.permissions`
(the privacy endpoints of `events/` need it too, and `events/` never imports this app)."""

from events.api.permissions import NOT_FOUND, attendee_for_caller

__all__ = ["NOT_FOUND", "attendee_for_caller"]
