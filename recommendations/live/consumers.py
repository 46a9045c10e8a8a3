"""The widget's WebSocket: pushes of the attendee's changed suggestions. Only routes: who the
attendee is comes from the session or a signed token (never from the client's claim), the lists
come from `recommendations.live.push`, and the ORM runs only inside `database_sync_to_async`."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.utils import translation

from events import groups
from events.api.auth import attendee_token_read
from events.consumers import UNKNOWN_MESSAGE
from events.models import Attendee
from matchmaking_site.sentences import language_of, localize_items
from matchmaking_site.websocket import CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN, JsonConsumer
from recommendations.live import push, state


@database_sync_to_async
def _attendee_for(*, event_slug: str, user_id: int | None, token: str) -> Attendee | None:
    """The attendee this socket speaks for in that event, or None. A token is honoured only for
    the event it was issued in: a token of one event cannot subscribe to another."""
    qs = Attendee.objects.select_related("event").filter(event__slug=event_slug)
    if token:
        read = attendee_token_read(token)
        if read is None:
            return None
        event_id, attendee_id = read
        return qs.filter(pk=attendee_id, event_id=event_id).first()
    if user_id is None:
        return None
    return qs.filter(user_id=user_id).first()


class SuggestionsConsumer(JsonConsumer):
    """`ws/events/<event>/suggestions/` (`?token=` for the embedded widget). On connect: joins the
    attendee's group and says {"type": "hello", "seq": n, "ids": [...], "items": [...]} (the list
    the next diffs apply to); then forwards `suggestions.changed` messages, and `message.new` (a
    message in one of the attendee's threads, `events.messages`). Close codes: 4401 no (valid)
    credentials, 4404 not an attendee of that event. Reasons go out in the language the page would
    use (the switcher's cookie, else Accept-Language); the layer's messages carry them in English."""

    metrics_name = "suggestions"

    attendee_id: int | None = None
    language = "en"

    async def connect(self):
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
        user = self.scope.get("user")
        user_id = user.pk if user is not None and user.is_authenticated else None
        if not token and user_id is None:
            await self.refuse(CLOSE_NOT_SIGNED_IN)
        slug = self.scope["url_route"]["kwargs"]["event"]
        attendee = await _attendee_for(event_slug=slug, user_id=user_id, token=token)
        if attendee is None:
            await self.refuse(CLOSE_NOT_SIGNED_IN if token and attendee_token_read(token) is None else CLOSE_NOT_FOUND)
        self.attendee_id = attendee.pk
        self.event_id = attendee.event_id
        self.language = language_of(self.scope.get("headers", []), self.scope.get("cookies") or {})
        self.group = groups.attendee_group(attendee.pk)
        # Join first, then take the base of the next diffs: a change in between is pushed, not lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        seq, items = await database_sync_to_async(self._start)(attendee)
        # The list itself, not only its ids: what the page painted may show the same people with
        # other reasons (someone listed walked into the viewer's room before the socket opened).
        ids = [item["external_id"] for item in items]
        await self.send_json({"type": "hello", "seq": seq, "ids": ids, "items": self._localized(items)})

    def _localized(self, items: list[dict]) -> list[dict]:
        with translation.override(self.language):
            return localize_items(items)

    def _start(self, attendee: Attendee):
        state.watch_start(attendee_id=attendee.pk, event_id=attendee.event_id)
        return push.widget_state_reset(attendee=attendee)

    async def disconnect(self, code):
        if self.attendee_id is None:
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await database_sync_to_async(state.watch_stop)(attendee_id=self.attendee_id, event_id=self.event_id)
        self.attendee_id = None

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "message": UNKNOWN_MESSAGE})

    async def suggestions_changed(self, message):
        message = dict(message)
        if message.get("added"):
            items = self._localized([a["item"] for a in message["added"]])
            message["added"] = [{**a, "item": item} for a, item in zip(message["added"], items, strict=True)]
        if message.get("changed"):
            message["changed"] = self._localized(message["changed"])
        await self.send_json(message)

    async def message_new(self, message):
        # A message of one of the attendee's threads (events.messages), on the socket they hold.
        await self.send_json(message)
