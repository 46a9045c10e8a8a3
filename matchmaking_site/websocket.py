"""The base of every WebSocket consumer: JSON frames bounded like the REST API's bodies, and a
frame that is not a JSON object answered with an error message instead of closing the socket."""

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import jsonlimits, metrics

# Close codes (4000-4999 are the application's): the client should not retry on these.
CLOSE_NOT_SIGNED_IN = 4401
CLOSE_NOT_FOUND = 4404
MAX_FRAME_CHARS = 64 * 1024  # clients send pings, heartbeats and small commands
NOT_AN_OBJECT = "A message is a JSON object with a `type`."
TOO_LARGE = "Message over {limit} characters."
TEXT_ONLY = "Send JSON as text frames."


class JsonConsumer(AsyncJsonWebsocketConsumer):
    #: the consumer's label in the open-connections metric
    metrics_name = "websocket"
    _counted = False

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        if not self._counted:
            self._counted = True
            metrics.WEBSOCKETS.labels(self.metrics_name).inc()
            metrics.WEBSOCKETS_OPENED.labels(self.metrics_name).inc()

    async def websocket_disconnect(self, message):
        if self._counted:
            self._counted = False
            metrics.WEBSOCKETS.labels(self.metrics_name).dec()
        await super().websocket_disconnect(message)

    async def refuse(self, code: int) -> None:
        """Turn the handshake down with `code` and end this consumer now. WHY: a consumer that only
        closes keeps running, a channel-layer receive pending, until the server reports the
        disconnect; ended here, a refused socket holds nothing."""
        await self.close(code=code)
        raise StopConsumer

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self.send_json({"type": "error", "message": TEXT_ONLY})
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_json({"type": "error", "message": TOO_LARGE.format(limit=MAX_FRAME_CHARS)})
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError as exc:
            await self.send_json({"type": "error", "message": str(exc)})
            return
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "message": NOT_AN_OBJECT})
            return
        await self.receive_json(content, **kwargs)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return jsonlimits.loads(text_data)
        except jsonlimits.JsonTooDeep:
            raise
        except ValueError as exc:
            raise ValueError(jsonlimits.NOT_JSON.format(error=exc)) from exc
