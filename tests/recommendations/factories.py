from datetime import timedelta

import factory

from events.enums import Phase
from events.models import Interaction, Room
from tests.factories import LIVE_START, AttendeeFactory, EventFactory


class ServingEventFactory(EventFactory):
    """An event whose lists are not reordered by the exposure cap (share 1.0: anyone may be in
    every list), so that tests of other features see the sources' order. Cap tests set a share."""

    exposure_cap_share = 1.0
    phase = Phase.LIVE


def attendees(event, n: int, **kwargs) -> list:
    return [AttendeeFactory(event=event, **kwargs) for _ in range(n)]


__all__ = ["ServingEventFactory", "attendees", "factory"]


def load_world(event, x):
    """An engine world as the event's facts: attendee i, room c, a stay of `weight` seconds."""
    people = attendees(event, x.n_attendees)
    rooms = Room.objects.bulk_create(
        [Room(event=event, external_id=f"r{c}", name=f"Table {c}") for c in range(x.n_contexts)]
    )
    Interaction.objects.bulk_create(
        Interaction(
            event=event,
            attendee=people[a],
            room=rooms[c],
            type="join_room",
            value=w,
            occurred_at=LIVE_START + timedelta(seconds=s),
            client_event_id=f"w{j}",
            qualifies=True,
        )
        for j, (a, c, w, s) in enumerate(
            zip(x.attendee.tolist(), x.context.tolist(), x.weight.tolist(), x.starts().tolist(), strict=True)
        )
    )
    return people
