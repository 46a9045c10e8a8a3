"""Channel-layer group names and message types: the one place they are spelled.

Consumers join these groups; services send to them after commit. A push is a hint: every message
carries a sequence number, and a client that sees a gap (or reconnects) re-fetches over REST.
"""

# Message types (the `type` key routes to the consumer method of the same name, dots -> underscores).
SUGGESTIONS_CHANGED = "suggestions.changed"  # to one attendee: their top list changed (a diff)
ENGAGEMENT_UPDATE = "engagement.update"  # to an event's organizers: counters moved
ROOM_PRESENCE = "room.presence"  # to a room's open pages: one person came or went
MESSAGE_NEW = "message.new"  # to both people of a mutual connection: a message in their thread

# Payloads (every message also carries its `type`):
#
# SUGGESTIONS_CHANGED, to attendee_group(attendee_id), sent by `recommendations.live.push` after commit:
#   {"seq": 12,                       # per attendee, +1 per message; a gap means "re-fetch over REST"
#    "event": "<event slug>",
#    "ids": ["<external id>", ...],   # the new list, in order (what the client must end up with)
#    "added": [{"index": 0, "item": {<suggestion as in the REST API>}}, ...],
#    "removed": ["<external id>", ...],
#    "moved": [{"external_id": "...", "from": 2, "to": 0}, ...],
#    "changed": [{<suggestion whose reasons or "here now" changed>}, ...]}
#
# ENGAGEMENT_UPDATE, to organizers_group(event_id), sent only by `dashboard.services.dashboard_push`
# after commit: something the dashboard shows moved, so open dashboards re-read their snapshot.
#   {"seq": 41,                       # per event, +1 per message; the snapshot says the last it includes
#    "event_id": 3,
#    "reason": "interactions",        # or "training" (a run or model version changed)
#   with reason "interactions" (a batch was just committed), also:
#    "interactions": 25,              # rows in the batch
#    "qualifying": 18,                # of which passed the event's dwell thresholds
#    "at": "2026-11-29T01:02:03.456789+00:00"}
#
# MESSAGE_NEW, to attendee_group(each of the two), sent by `events.messages` after commit:
#   {"thread": 17,                    # the connection's id
#    "message": {"number": 4,         # per thread, from 1; more than last + 1 means "catch up over REST"
#                "sender": "<external id>", "body": "...", "sent_at": "2026-...Z"}}
#
# ROOM_PRESENCE, to room_group(event_id, room_id), by `events.presence` after each change: the
# change, not the room (a full list to everyone on each change grew as the room size squared).
#   {"joined": {"external_id": "...", "display_name": "..."}}  or  {"left": "<external id>"},
#    "count": 41}                     # people in the room after it: a page whose list has another
#                                     # size asks for the list ({"type": "presence.sync"} on its socket;
#                                     # heartbeat acks carry the count too), so a lost or late
#                                     # message is mended within a heartbeat


def attendee_group(attendee_id: int) -> str:
    return f"attendee.{attendee_id}"


def organizers_group(event_id: int) -> str:
    return f"event.{event_id}.organizers"


def room_group(event_id: int, room_id: int) -> str:
    return f"event.{event_id}.room.{room_id}"
