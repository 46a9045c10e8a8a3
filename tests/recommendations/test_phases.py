"""Every phase transition, with its recorded time and cause."""

from datetime import timedelta

import pytest

from events.enums import Phase
from events.models import Event, PhaseTransition
from recommendations.jobs.phases import active_context_count, event_refresh_phase
from tests.factories import LIVE_START, InteractionFactory, RoomFactory

from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db

DURING = LIVE_START + timedelta(hours=1)
AFTER_LIVE = LIVE_START + timedelta(hours=10)
AFTER_ON_DEMAND = LIVE_START + timedelta(days=31)


@pytest.fixture
def event():
    return ServingEventFactory(phase=Phase.COLD, qualifying_threshold=6, min_active_contexts=2)


def interact(event, people, room, *, qualifies=True):
    for person in people:
        InteractionFactory(event=event, attendee=person, room=room, qualifies=qualifies)


def test_cold_stays_cold_below_interaction_threshold(event):
    people = attendees(event, 5)
    room = RoomFactory(event=event)
    interact(event, people, room)
    interact(event, people, room, qualifies=False)  # accidental clicks do not count
    assert event_refresh_phase(event=event, now=DURING) == []
    event.refresh_from_db()
    assert (event.phase, event.phase_changed_at) == (Phase.COLD, None)


def test_cold_stays_cold_without_enough_active_contexts(event):
    people = attendees(event, 6)
    room, lonely = RoomFactory(event=event), RoomFactory(event=event)
    interact(event, people[:5], room)
    interact(event, people[5:], lonely)  # one interaction: links nobody
    assert active_context_count(event=event) == 1
    assert event_refresh_phase(event=event, now=DURING) == []


def test_cold_to_live_when_both_thresholds_met(event):
    people = attendees(event, 6)
    room_a, room_b = RoomFactory(event=event), RoomFactory(event=event)
    interact(event, people[:4], room_a)
    interact(event, people[4:], room_b)
    [transition] = event_refresh_phase(event=event, now=DURING)
    assert (transition.from_phase, transition.to_phase, transition.at) == (Phase.COLD, Phase.LIVE, DURING)
    assert transition.cause == (
        "6 qualifying interactions >= threshold 6; 2 contexts with 2+ qualifying interactions >= 2"
    )
    event.refresh_from_db()
    assert (event.phase, event.phase_changed_at) == (Phase.LIVE, DURING)
    assert event_refresh_phase(event=event, now=DURING) == []  # recorded once


def test_live_to_on_demand_when_live_window_ends(event):
    event.phase = Phase.LIVE
    event.save()
    assert event_refresh_phase(event=event, now=event.live_ends_at - timedelta(seconds=1)) == []
    [transition] = event_refresh_phase(event=event, now=AFTER_LIVE)
    assert (transition.from_phase, transition.to_phase) == (Phase.LIVE, Phase.ON_DEMAND)
    assert transition.cause == "Live window ended at 2026-06-04 18:00 UTC"


def test_on_demand_to_closed_when_on_demand_window_ends(event):
    event.phase = Phase.ON_DEMAND
    event.save()
    assert event_refresh_phase(event=event, now=AFTER_LIVE) == []
    [transition] = event_refresh_phase(event=event, now=AFTER_ON_DEMAND)
    assert (transition.from_phase, transition.to_phase) == (Phase.ON_DEMAND, Phase.CLOSED)
    assert transition.cause == "On-demand window ended at 2026-07-04 09:00 UTC"
    assert event_refresh_phase(event=event, now=AFTER_ON_DEMAND + timedelta(days=100)) == []


def test_cold_event_past_both_windows_records_each_step(event):
    transitions = event_refresh_phase(event=event, now=AFTER_ON_DEMAND)
    assert [(t.from_phase, t.to_phase) for t in transitions] == [
        (Phase.COLD, Phase.ON_DEMAND),
        (Phase.ON_DEMAND, Phase.CLOSED),
    ]
    assert PhaseTransition.objects.filter(event=event).count() == 2
    event.refresh_from_db()
    assert event.phase == Phase.CLOSED


def test_open_ended_event_never_leaves_live(event):
    event.live_ends_at = None
    event.on_demand_ends_at = None
    event.phase = Phase.LIVE
    event.save()
    assert event_refresh_phase(event=event, now=AFTER_ON_DEMAND) == []


def test_refresh_task_advances_phase(event):
    from recommendations.jobs.tasks import refresh_event_phase

    event.phase = Phase.LIVE
    event.live_ends_at = LIVE_START + timedelta(minutes=1)
    event.save()
    # The task uses the wall clock, which is past this event's windows.
    assert refresh_event_phase.delay(event_id=event.pk).get() == [Phase.ON_DEMAND, Phase.CLOSED]
    assert refresh_event_phase.delay(event_id=10**9).get() == []


def test_refresh_phases_task_covers_open_events_only(event):
    from recommendations.jobs.tasks import refresh_phases

    closed = ServingEventFactory(phase=Phase.CLOSED)
    assert closed.pk != event.pk
    open_events = Event.objects.exclude(phase=Phase.CLOSED).count()
    assert refresh_phases.delay().get() == open_events


def test_going_live_trains_and_going_on_demand_batches(event, django_capture_on_commit_callbacks):
    from recommendations.models import TrainingRun

    people = attendees(event, 6)
    room_a, room_b = RoomFactory(event=event), RoomFactory(event=event)
    interact(event, people[:4], room_a)
    interact(event, people[4:], room_b)
    with django_capture_on_commit_callbacks(execute=True):
        event_refresh_phase(event=event, now=DURING)
    with django_capture_on_commit_callbacks(execute=True):
        event_refresh_phase(event=event, now=AFTER_LIVE)
    runs = list(TrainingRun.objects.filter(event=event).order_by("id").values_list("kind", "trigger", "status"))
    assert runs == [("train", "phase", "succeeded"), ("batch", "phase", "succeeded")]


def test_phase_work_waits_for_the_commit(event, django_capture_on_commit_callbacks):
    from recommendations.models import TrainingRun

    event.phase = Phase.LIVE
    event.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event_refresh_phase(event=event, now=AFTER_LIVE)
    assert len(callbacks) >= 1  # queued for the commit (with the cache bump and schedule sync)
    assert TrainingRun.objects.filter(event=event).count() == 0
