"""Messages between two attendees whose connection is mutual: a short thread, pushed live over the
widget's WebSocket, caught up over REST, and closed by a block at once.

- **Who may write.** Either of the two, once the connection is accepted, while neither blocked the
  other. The connection's row is locked while a message is numbered and written, and a block takes
  the same lock (`events.services.block_create`), so a message is either in before the block or
  refused after it: never delivered across one.
- **Numbers.** Each thread counts its messages from 1 (unique per thread). A push carries the
  number; a client that last saw n and gets more than n + 1 fetches what it missed
  (`GET .../connections/<id>/messages/?after=n`). A reconnect catches up the same way.
- **Push.** After commit, `message.new` goes to both people's attendee groups (the sender's other
  tabs too), through the channel layer, on the socket the widget already holds.
- **Blocked.** A block hides the thread from both and stops every write: reading or writing answers
  as if there were no such conversation.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils.translation import gettext_noop

from matchmaking_site.layer import group_send

from . import groups
from .enums import ConnectionStatus
from .models import Attendee, Block, Connection, Message

MAX_BODY = 1000
PAGE = 200  # messages per catch-up answer, at most

NOT_MUTUAL = gettext_noop("You can write once the connection is accepted.")
EMPTY = gettext_noop("Write something.")
TOO_LONG = gettext_noop("A message holds at most {n} characters.")


class NoThread(Exception):
    """No conversation for this attendee here (not theirs, or closed by a block): a 404."""


def blocked_between(a_id: int, b_id: int) -> bool:
    return Block.objects.filter(Q(blocker_id=a_id, blocked_id=b_id) | Q(blocker_id=b_id, blocked_id=a_id)).exists()


def thread_for(*, attendee: Attendee, connection_id: int) -> Connection:
    """The connection `attendee` is part of, if its thread is open to them (no block), else NoThread."""
    connection = (
        Connection.objects.select_related("requester", "recipient")
        .filter(Q(requester=attendee) | Q(recipient=attendee), pk=connection_id, event_id=attendee.event_id)
        .first()
    )
    if connection is None or blocked_between(connection.requester_id, connection.recipient_id):
        raise NoThread
    return connection


def thread_messages(*, connection: Connection, after: int = 0) -> list[Message]:
    """The thread's messages numbered after `after`, oldest first (at most PAGE)."""
    return list(
        Message.objects.filter(connection=connection, number__gt=after)
        .select_related("sender")
        .order_by("number")[:PAGE]
    )


def message_payload(message: Message) -> dict:
    return {
        "number": message.number,
        "sender": message.sender.external_id,
        "body": message.body,
        "sent_at": message.created_at.isoformat().replace("+00:00", "Z"),
    }


@transaction.atomic
def message_send(*, connection: Connection, sender: Attendee, body: str) -> Message:
    body = body.strip()
    if not body:
        raise ValidationError({"body": [EMPTY]})
    if len(body) > MAX_BODY:
        raise ValidationError({"body": [TOO_LONG.format(n=MAX_BODY)]})
    # The row lock orders this message with any answer to the connection and with a block.
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    if sender.pk not in (connection.requester_id, connection.recipient_id):
        raise NoThread
    if blocked_between(connection.requester_id, connection.recipient_id):
        raise NoThread
    if connection.status != ConnectionStatus.ACCEPTED:
        raise ValidationError({"body": [NOT_MUTUAL]})
    last = Message.objects.filter(connection=connection).aggregate(n=Max("number"))["n"] or 0
    message = Message.objects.create(
        event_id=connection.event_id, connection=connection, sender=sender, number=last + 1, body=body
    )
    payload = {"type": groups.MESSAGE_NEW, "thread": connection.pk, "message": message_payload(message)}
    people = (connection.requester_id, connection.recipient_id)
    transaction.on_commit(lambda: _push(people, payload))
    return message


def _push(people: tuple[int, int], payload: dict) -> None:
    for attendee_id in people:  # (nothing is sent when no channel layer is configured)
        group_send(groups.attendee_group(attendee_id), payload)
