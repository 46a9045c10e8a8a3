"""WebSocket consumers of `events/`. Consumers only route; work happens in services, and the ORM
runs only inside `database_sync_to_async`."""

from channels.db import database_sync_to_async
from django.utils import timezone

from matchmaking_site.websocket import CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN, JsonConsumer

from . import groups, presence

UNKNOWN_MESSAGE = "Unknown message type."


class PingConsumer(JsonConsumer):
    """Answers {"type": "ping"} with {"type": "pong", "server_time": ...}; lets clients and
    monitoring check the WebSocket stack (origin validation, auth middleware, routing) end to end."""

    async def connect(self):
        await self.accept()

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong", "server_time": timezone.now().isoformat()})
        else:
            await self.send_json({"type": "error", "message": UNKNOWN_MESSAGE})


class RoomPresenceConsumer(JsonConsumer):
    """Held open by an attendee's room page: connect = join, disconnect = leave, and
    {"type": "heartbeat"} every `presence.HEARTBEAT_INTERVAL` keeps the visit open; a client that
    stops sending them (closed lid, lost network) is closed by the periodic sweeper at its last
    heartbeat. Authenticated by the session: the attendee is the signed-in user's, never a client
    claim."""

    visit_id: int | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_NOT_SIGNED_IN)
        self.user_id = user.pk
        self.event_slug = self.scope["url_route"]["kwargs"]["event"]
        self.room_external_id = self.scope["url_route"]["kwargs"]["room"]
        visit = await self._join()
        if visit is None:
            await self.refuse(CLOSE_NOT_FOUND)
        self.visit_id = visit.pk
        self._room = (visit.event_id, visit.room_id)
        self.room_group = groups.room_group(visit.event_id, visit.room_id)
        await self.channel_layer.group_add(self.room_group, self.channel_name)
        await self.accept()
        people = await self._people()  # after joining the group: a later change is also sent
        await self.send_json(
            {
                "type": "joined",
                "visit": visit.pk,
                "heartbeat_interval": int(presence.HEARTBEAT_INTERVAL.total_seconds()),
                **people,
            }
        )

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if kind == "presence.sync":  # the page's list disagrees with a count it was sent
            await self.send_json({"type": "room.snapshot", **await self._people()})
            return
        if kind != "heartbeat":
            await self.send_json({"type": "error", "message": UNKNOWN_MESSAGE})
            return
        alive = await database_sync_to_async(presence.presence_heartbeat)(visit_id=self.visit_id)
        if not alive:
            # The sweeper closed the visit (heartbeats came too late): this is a new stay.
            visit = await self._join()
            self.visit_id = visit.pk if visit else None
        count = await database_sync_to_async(self._count)()
        await self.send_json({"type": "heartbeat_ack", "visit": self.visit_id, "count": count})

    async def room_presence(self, message):
        await self.send_json(message)

    @database_sync_to_async
    def _people(self) -> dict:
        """Everyone in the room now, and how many (the base the page applies changes to)."""
        event_id, room_id = self._room
        people = presence.room_occupants(event_id=event_id, room_id=room_id)
        return {"people": people, "count": len(people)}

    def _count(self) -> int:
        """The room's head count from the event's cached snapshot (no query per heartbeat)."""
        event_id, room_id = self._room
        present = presence.presence_snapshot(event_id=event_id)
        return presence.room_count(room_id=room_id, present=present)

    async def disconnect(self, code):
        if getattr(self, "room_group", None):
            await self.channel_layer.group_discard(self.room_group, self.channel_name)
        if self.visit_id is not None:
            await database_sync_to_async(presence.presence_browser_leave)(visit_id=self.visit_id)
            self.visit_id = None

    @database_sync_to_async
    def _join(self):
        return presence.presence_browser_join(
            user_id=self.user_id, event_slug=self.event_slug, room_external_id=self.room_external_id
        )
