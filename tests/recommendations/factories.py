import factory

from events.enums import Phase
from tests.factories import AttendeeFactory, EventFactory


class ServingEventFactory(EventFactory):
    """An event whose lists are not reordered by the exposure cap (share 1.0: anyone may be in
    every list), so that tests of other features see the sources' order. Cap tests set a share."""

    exposure_cap_share = 1.0
    phase = Phase.LIVE


def attendees(event, n: int, **kwargs) -> list:
    return [AttendeeFactory(event=event, **kwargs) for _ in range(n)]


__all__ = ["ServingEventFactory", "attendees", "factory"]
