"""Sequence numbers of the live channels, kept where nothing evicts them (a table).

One statement per number: an upsert that returns the new value, atomic on PostgreSQL (the
conflicting row is locked) and on SQLite (one writer at a time), so two processes never hand out
the same number and a number never goes backwards.
"""

from django.db import connection

from recommendations.models import PushSequence


def attendee_channel(attendee_id: int) -> str:
    return f"attendee:{attendee_id}"


def dashboard_channel(event_id: int) -> str:
    return f"dashboard:{event_id}"


def sequence_next(name: str) -> int:
    """The next number of channel `name` (1 for the first)."""
    table = connection.ops.quote_name(PushSequence._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, value) VALUES (%s, 1) "
            f"ON CONFLICT (name) DO UPDATE SET value = {table}.value + 1 RETURNING value",
            [name],
        )
        return int(cursor.fetchone()[0])


def sequence_current(name: str) -> int:
    """The last number handed out on channel `name` (0 before any)."""
    return PushSequence.objects.filter(name=name).values_list("value", flat=True).first() or 0
