"""WebSocket consumers of `events/`. Consumers only route; work happens in services."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Answers {"type": "ping"} with {"type": "pong", "server_time": ...}; lets clients and
    monitoring check the WebSocket stack (origin validation, auth middleware, routing) end to end."""

    async def connect(self):
        await self.accept()

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong", "server_time": timezone.now().isoformat()})
        else:
            await self.send_json({"type": "error", "message": "Unknown message type."})
