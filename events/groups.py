"""Channel-layer group names and message types: the one place they are spelled.

Consumers join these groups; services send to them after commit. A push is a hint: every message
carries a sequence number, and a client that sees a gap (or reconnects) re-fetches over REST.
"""

# Message types (the `type` key routes to the consumer method of the same name, dots -> underscores).
SUGGESTIONS_CHANGED = "suggestions.changed"  # to one attendee: their top list changed (a diff)
ENGAGEMENT_UPDATE = "engagement.update"  # to an event's organizers: counters moved


def attendee_group(attendee_id: int) -> str:
    return f"attendee.{attendee_id}"


def organizers_group(event_id: int) -> str:
    return f"event.{event_id}.organizers"


def room_group(event_id: int, room_id: int) -> str:
    return f"event.{event_id}.room.{room_id}"
