"""The ingestion outbox forwards a personalize event's batch to PutEvents, and nothing else's."""

import pytest

from events.signals import interactions_processing
from recommendations.backends.personalize import tasks
from tests.factories import EventFactory, InteractionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def forwarded(monkeypatch):
    # The task itself (PutEvents through a Stubber) is tested in test_live_and_erasure.py; here
    # only what the hookup enqueues is looked at.
    calls: list[dict] = []
    monkeypatch.setattr(tasks.forward_interactions, "delay", lambda **kwargs: calls.append(kwargs))
    return calls


def test_personalize_event_batch_is_forwarded_after_commit(forwarded, django_capture_on_commit_callbacks):
    event = EventFactory(backend="personalize")
    ids = [InteractionFactory(attendee__event=event).pk for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        interactions_processing.send(sender=None, event_id=event.pk, interaction_ids=ids)
    assert forwarded == [{"event_id": event.pk, "interaction_ids": ids}]


def test_local_event_batch_is_not_forwarded(forwarded, django_capture_on_commit_callbacks):
    event = EventFactory(backend="local")
    ids = [InteractionFactory(attendee__event=event).pk]
    with django_capture_on_commit_callbacks(execute=True):
        interactions_processing.send(sender=None, event_id=event.pk, interaction_ids=ids)
    assert forwarded == []
