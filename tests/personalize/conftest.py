from datetime import timedelta
from types import SimpleNamespace

import pytest
from botocore.stub import Stubber
from django.utils import timezone
from moto import mock_aws

from events.enums import Backend, InteractionType
from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.runs.machine import personalize_run_advance
from recommendations.backends.personalize.services import personalize_run_start
from recommendations.models import TrainingRun
from tests.factories import (
    LIVE_START,
    AttendeeFactory,
    ContentFactory,
    EventFactory,
    InteractionFactory,
    InterestTagFactory,
    RoomFactory,
)

from .stubs import BUCKET, PREFIX, REGION, ROLE, Script


@pytest.fixture
def aws(settings, monkeypatch):
    """Personalize clients behind Stubbers (each call validated against the service model), S3 in
    moto. Any call not queued makes the Stubber raise, so an unexpected create fails the test."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_REGION = REGION
    settings.PERSONALIZE_ROLE_ARN = ROLE
    settings.PERSONALIZE_BUCKET = BUCKET
    settings.PERSONALIZE_PREFIX = PREFIX
    clients.reset()
    with mock_aws():
        clients.s3().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        stubs = SimpleNamespace(
            pz=Stubber(clients.personalize()),
            runtime=Stubber(clients.personalize_runtime()),
            events=Stubber(clients.personalize_events()),
            s3=clients.s3(),
        )
        for stub in (stubs.pz, stubs.runtime, stubs.events):
            stub.activate()
        yield stubs
        for stub in (stubs.pz, stubs.runtime, stubs.events):
            stub.deactivate()
    clients.reset()


@pytest.fixture
def world(db):
    """One event on the personalize backend: three attendees, two rooms, a content item and an
    interest tag; five qualifying interactions, one that does not qualify, one of an attendee who
    refused training."""
    event = EventFactory(slug="summit", backend=Backend.PERSONALIZE)
    ada = AttendeeFactory(event=event, external_id="ada")
    bob = AttendeeFactory(event=event, external_id="bob")
    cyd = AttendeeFactory(event=event, external_id="cyd", consent_training=False)
    hall = RoomFactory(event=event, external_id="hall")
    lab = RoomFactory(event=event, external_id="lab")
    talk = ContentFactory(event=event, external_id="talk")
    tag = InterestTagFactory(event=event, slug="mlops")
    t0 = LIVE_START + timedelta(minutes=10)
    rows = [
        InteractionFactory(attendee=ada, room=hall, value=300.0, occurred_at=t0, client_event_id="i1"),
        InteractionFactory(
            attendee=bob, room=hall, value=120.0, occurred_at=t0 + timedelta(seconds=1), client_event_id="i2"
        ),
        InteractionFactory(
            attendee=ada, room=lab, value=90.0, occurred_at=t0 + timedelta(seconds=2), client_event_id="i3"
        ),
        InteractionFactory(
            attendee=bob,
            room=None,
            content=talk,
            type=InteractionType.VIEW_CONTENT,
            value=45.0,
            occurred_at=t0 + timedelta(seconds=3),
            client_event_id="i4",
        ),
        InteractionFactory(
            attendee=ada,
            room=None,
            interest=tag,
            type=InteractionType.QUESTIONNAIRE,
            value=None,
            occurred_at=t0 + timedelta(seconds=4),
            client_event_id="i5",
        ),
        InteractionFactory(  # too short to qualify
            attendee=bob,
            room=lab,
            value=10.0,
            qualifies=False,
            occurred_at=t0 + timedelta(seconds=5),
            client_event_id="i6",
        ),
        InteractionFactory(  # cyd refused training
            attendee=cyd, room=hall, value=600.0, occurred_at=t0 + timedelta(seconds=6), client_event_id="i7"
        ),
    ]
    return SimpleNamespace(event=event, ada=ada, bob=bob, cyd=cyd, hall=hall, lab=lab, talk=talk, tag=tag, rows=rows)


class Clock:
    """Advances a fake 'now' an hour per call, so every scheduled poll is due."""

    def __init__(self):
        self.now = timezone.now()

    def tick(self):
        self.now += timedelta(hours=1)
        return self.now


@pytest.fixture
def drive():
    clock = Clock()

    def _drive(run, *, advances: int | None = None) -> list[float]:
        """Advance until the run has nothing left to schedule, or `advances` times."""
        countdowns = []
        for _ in range(advances or 50):
            countdown = personalize_run_advance(run_id=run.pk, now=clock.tick())
            if countdown is None:
                run.refresh_from_db()
                return countdowns
            countdowns.append(countdown)
        if advances:
            return countdowns
        raise AssertionError("the run did not finish")

    _drive.clock = clock
    return _drive


@pytest.fixture
def trained(aws, world, drive):
    """The first run, from an empty account to an active campaign."""
    script = Script(aws, mapping.event_token(world.event))
    run = personalize_run_start(event=world.event, kind=TrainingRun.Kind.PERSONALIZE)
    script.first_run(run.pk)
    countdowns = drive(run)
    aws.pz.assert_no_pending_responses()
    return run, script, countdowns


@pytest.fixture
def rich_world(db):
    """An event on the personalize backend with enough history for the local model to hold some
    out and score it: the engine's world of groups (people who keep meeting their group)."""
    from tests.engine.worlds import groups
    from tests.recommendations.factories import load_world

    event = EventFactory(slug="groups-summit", backend=Backend.PERSONALIZE)
    load_world(event, groups())
    return event
