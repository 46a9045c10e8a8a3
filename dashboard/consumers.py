"""The dashboard's WebSocket: joins the organizers' group of one event and forwards its hints.
Only routes: who may listen is decided by `events_for_user`, as for the page and its JSON."""

from channels.db import database_sync_to_async

from events.groups import organizers_group
from events.selectors import events_for_user
from matchmaking_site.websocket import CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN, JsonConsumer

from .services import dashboard_seq


@database_sync_to_async
def _may_watch(user, event_id: int) -> bool:
    return (
        user.is_active
        and user.is_staff
        and user.has_perm("events.view_event")
        and events_for_user(user=user).filter(pk=event_id).exists()
    )


class DashboardConsumer(JsonConsumer):
    """Says {"type": "hello", "event_id", "seq": <number of the last push>} on connect, then sends
    {"type": "engagement.update", "seq", "reason", ...} whenever the event's counters,
    runs or models move; the page then re-reads the snapshot over HTTP."""

    metrics_name = "dashboard"

    group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_NOT_SIGNED_IN)
        event_id = self.scope["url_route"]["kwargs"]["event_id"]
        if not await _may_watch(user, event_id):
            # Another organization's event: the same answer as for one that does not exist.
            await self.refuse(CLOSE_NOT_FOUND)
        self.group = organizers_group(event_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        seq = await database_sync_to_async(dashboard_seq)(event_id=event_id)
        await self.send_json({"type": "hello", "event_id": event_id, "seq": seq})

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def engagement_update(self, message):
        await self.send_json(message)
