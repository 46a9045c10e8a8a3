"""After commit, fan-out: once per batch, never lost, never twice; and the API stays up without a broker."""

import logging
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.test import Client

from events import outbox, signals
from events.models import Interaction
from events.services import api_key_create
from events.tasks import process_interactions, sweep_interactions
from matchmaking_site.celery import app as celery_app
from tests.factories import LIVE_START, AttendeeFactory, ContentFactory, EventFactory, InteractionFactory

AT = LIVE_START + timedelta(minutes=10)


def items(start, count):
    return [
        {
            "client_event_id": f"ce-{n}",
            "attendee_id": "ada",
            "context_kind": "content",
            "context_id": "talk-1",
            "type": "view_content",
            "value": 40,
            "occurred_at": AT.isoformat(),
        }
        for n in range(start, start + count)
    ]


def make_world():
    event = EventFactory(slug="summit")
    _, secret = api_key_create(organization=event.organization, name="platform")
    AttendeeFactory(event=event, external_id="ada")
    ContentFactory(event=event, external_id="talk-1")
    return event, secret


def post(client, secret, batch):
    return client.post(
        "/api/v1/events/summit/interactions/",
        {"interactions": batch},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {secret}",
    )


class Recorder:
    """A receiver that remembers every id it was handed, and from which event."""

    def __init__(self, signal):
        self.signal = signal
        self.calls: list[tuple[int, list[int]]] = []
        self.lock = threading.Lock()

    def __call__(self, sender, event_id, interaction_ids, **kwargs):
        with self.lock:
            self.calls.append((event_id, list(interaction_ids)))

    def __enter__(self):
        self.signal.connect(self, weak=False)
        return self

    def __exit__(self, *exc):
        self.signal.disconnect(self)

    def counts(self) -> Counter:
        return Counter(pk for _, ids in self.calls for pk in ids)


@pytest.mark.django_db
def test_outbox_processing_signal_once_per_batch_after_commit(client, django_capture_on_commit_callbacks):
    event, secret = make_world()
    with Recorder(signals.interactions_processing) as processing:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            post(client, secret, items(0, 5))
        ids = sorted(Interaction.objects.values_list("pk", flat=True))
        # Once per batch, not per interaction: the insert's announcement, and (the task ran in
        # this process, eagerly) what waits for the worker's claim to commit: the live model
        # update and the organizers' engagement counts.
        assert len(callbacks) == 3
        # The task ran eagerly (the test default) and processed the whole batch in one go.
        assert processing.calls == [(event.pk, ids)]
    assert Interaction.objects.filter(processed_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_outbox_nothing_announced_before_commit(client, django_capture_on_commit_callbacks):
    _, secret = make_world()
    with Recorder(signals.interactions_processing) as processing:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            post(client, secret, items(0, 3))
        assert (len(callbacks), processing.calls) == (1, [])
    assert Interaction.objects.filter(processed_at__isnull=True).count() == 3


@pytest.mark.django_db
def test_outbox_duplicates_are_not_announced_again(client, django_capture_on_commit_callbacks):
    _, secret = make_world()
    post(client, secret, items(0, 3))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(client, secret, items(0, 3))
    assert callbacks == []


@pytest.mark.django_db
def test_outbox_process_claims_each_row_once():
    rows = InteractionFactory.create_batch(3)
    ids = [r.pk for r in rows]
    with Recorder(signals.interactions_processing) as processing:
        assert outbox.interactions_process(interaction_ids=ids) == 3
        assert outbox.interactions_process(interaction_ids=ids) == 0
        assert process_interactions(interaction_ids=[*ids, 999_999]) == 0
    assert processing.counts() == Counter(ids)


@pytest.mark.django_db
def test_outbox_failing_receiver_rolls_back_the_mark():
    row = InteractionFactory()

    def broken(**kwargs):
        raise RuntimeError("model update failed")

    signals.interactions_processing.connect(broken)
    try:
        with pytest.raises(RuntimeError):
            outbox.interactions_process(interaction_ids=[row.pk])
    finally:
        signals.interactions_processing.disconnect(broken)
    row.refresh_from_db()
    assert row.processed_at is None
    assert outbox.interactions_sweep(grace=timedelta(0)) == 1


@pytest.mark.django_db
def test_outbox_sweep_leaves_fresh_rows_to_their_own_task():
    InteractionFactory.create_batch(2)
    assert outbox.interactions_sweep() == 0  # younger than SWEEP_GRACE
    assert outbox.interactions_sweep(grace=timedelta(0), chunk=1) == 2


@pytest.mark.django_db(transaction=True)
def test_outbox_concurrent_sweepers_never_process_a_row_twice():
    rows = InteractionFactory.create_batch(300)
    barrier = threading.Barrier(3)
    with Recorder(signals.interactions_processing) as processing:

        def sweep():
            try:
                barrier.wait()
                outbox.interactions_sweep(grace=timedelta(0), chunk=7)
            finally:
                connection.close()

        threads = [threading.Thread(target=sweep) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert processing.counts() == Counter(r.pk for r in rows)


# --- The broker really down, then back ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _use_broker(url: str) -> None:
    """Point the Celery app at another broker, dropping its cached connection and producer pools."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_port():
    """A port where no broker listens (yet); restores the app's broker afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is needed to bring a broker back")
    original = celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False
    port = _free_port()
    _use_broker(f"redis://127.0.0.1:{port}/0")
    yield port
    _use_broker(original)


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_outbox_broker_down_accepts_then_processes_each_once_when_back(broker_port, caplog):
    event, secret = make_world()
    client = Client()
    with Recorder(signals.interactions_processing) as processing:
        with caplog.at_level(logging.WARNING, logger="events.outbox"):
            responses = [post(client, secret, items(start, 100)) for start in (0, 100, 200)]
        assert [(r.status_code, r.json()["accepted"]) for r in responses] == [(200, 100)] * 3
        assert Interaction.objects.filter(processed_at__isnull=True).count() == 300
        assert sum("the outbox sweeper will" in r.getMessage() for r in caplog.records) == 3

        server = subprocess.Popen(
            ["redis-server", "--port", str(broker_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", broker_port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=20):
                sweep_interactions.delay(grace_seconds=0)
                # A late redelivery of one batch's own task, after the sweeper: must change nothing.
                first_batch = sorted(Interaction.objects.values_list("pk", flat=True))[:100]
                process_interactions.delay(interaction_ids=first_batch)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and Interaction.objects.filter(processed_at__isnull=True).exists():
                    time.sleep(0.2)
                time.sleep(1)  # let the redelivered task run too
        finally:
            server.terminate()
            server.wait(10)
    assert Interaction.objects.filter(processed_at__isnull=True).count() == 0
    ids = set(Interaction.objects.filter(event=event).values_list("pk", flat=True))
    assert processing.counts() == Counter(dict.fromkeys(ids, 1))


@pytest.mark.django_db
def test_outbox_sweepers_are_scheduled_and_registered():
    from django_celery_beat.models import PeriodicTask

    scheduled = dict(
        PeriodicTask.objects.filter(task__startswith="events.", interval__isnull=False).values_list(
            "task", "interval__every"
        )
    )
    assert scheduled == {
        "events.sweep_interactions": 60,
        "events.close_stale_visits": 30,
        "events.send_due_webhooks": 15,
    }
    assert {"events.sweep_interactions", "events.close_stale_visits", "events.process_interactions"} <= set(
        celery_app.tasks
    )


@pytest.mark.django_db
def test_outbox_portable_insert_skips_recorded_ids(django_capture_on_commit_callbacks):
    """The path the embedded SQLite default takes, exercised here on PostgreSQL."""
    from events.outbox import InteractionRow, _insert_portable

    existing = InteractionFactory(client_event_id="seen")
    row = InteractionRow(
        attendee_id=existing.attendee_id,
        room_id=existing.room_id,
        content_id=None,
        interest_id=None,
        type="join_room",
        value=75.0,
        occurred_at=AT,
        client_event_id="new",
        qualifies=True,
    )
    inserted = _insert_portable(
        event_id=existing.event_id, rows=[row._replace(client_event_id="seen"), row], source="import"
    )
    assert list(inserted) == ["new"]
    assert Interaction.objects.get(pk=inserted["new"]).source == "import"
    assert Interaction.objects.count() == 2
