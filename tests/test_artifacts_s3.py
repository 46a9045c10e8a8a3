"""Model artifacts in object storage: a training uploads the version, and a web process that never
trained, with a model folder of its own and no shared disk, serves it. S3 is moto's server, which
both processes reach over HTTP as they would reach S3."""

import json
import shutil
from datetime import timedelta

import boto3
import pytest
import redis
import requests
from django.core.cache import caches
from moto.server import ThreadedMotoServer

from events.services import api_key_create
from recommendations.backends import Unavailable
from recommendations.backends.local.fit import train_event_now
from recommendations.backends.local.loaded import LoadedModel, forget_loaded_models
from recommendations.engine import EngineConfig
from recommendations.serving.lists import recommendations_for
from tests.factories import AttendeeFactory, InteractionFactory, RoomFactory
from tests.live import asgi_server, free_port, http, server_env
from tests.recommendations.factories import ServingEventFactory

pytestmark = pytest.mark.django_db(transaction=True)
BUCKET = "matchmaking-models"
WEB_REDIS = "redis://127.0.0.1:6379/15"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}


@pytest.fixture
def s3(monkeypatch, settings, tmp_path):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    settings.MODEL_ARTIFACT_BUCKET = BUCKET
    settings.AWS_S3_ENDPOINT_URL = endpoint
    settings.AWS_REGION = "eu-west-1"
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "trainer-disk"
    forget_loaded_models()
    yield endpoint
    forget_loaded_models()
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto's state is per Python process
    server.stop()


def _event():
    event = ServingEventFactory(slug="s3-summit")
    people = [AttendeeFactory(event=event, external_id=f"p{i}", display_name=f"P{i}") for i in range(8)]
    rooms = [RoomFactory(event=event, external_id=f"r{i}", name=f"Room {i}") for i in range(3)]
    for i, person in enumerate(people):
        for k, room in enumerate(rooms[: 1 + i % 3]):
            InteractionFactory(
                attendee=person,
                room=room,
                value=300 + 60 * i,
                occurred_at=event.live_starts_at + timedelta(minutes=10 * k + i),
            )
    return event, people


# Co-presence only, served as configured: the list is the model's own (source "local"), which no
# fallback (rules, popularity) could answer in the web process if it failed to load the model.
CO_PRESENCE = EngineConfig(w_direct=1.0, w_two_hop=0.0, w_social=0.0, w_activity=0.0)


def test_a_process_that_never_trained_serves_the_version_from_the_bucket(s3, settings, tmp_path):
    event, people = _event()
    version = train_event_now(event=event, config=CO_PRESENCE, learn=False)
    assert version.status == "published"
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    prefix = f"models/event-{event.pk}/{version.artifact.rstrip('/').rsplit('/', 1)[1]}/"
    assert keys == {prefix + "model.npz", prefix + "index.npz"}
    for alias in caches:  # the list as the artifact ranks it, not a live list the ingestion wrote
        caches[alias].clear()
    result = recommendations_for(attendee=people[0], num_results=5)
    expected = [item.external_id for item in result.items]
    assert expected and (result.source, result.model_version) == ("local", version.number)
    shutil.rmtree(settings.MODEL_ARTIFACT_ROOT)  # the trainer's disk is gone: only the bucket has it

    _, key = api_key_create(organization=event.organization, name="platform")
    if settings.REDIS_URL:
        redis.Redis.from_url(WEB_REDIS).flushdb()
    web_disk = tmp_path / "web-disk"
    env = server_env(
        MODEL_ARTIFACT_ROOT=str(web_disk),
        MODEL_ARTIFACT_BUCKET=BUCKET,
        AWS_S3_ENDPOINT_URL=s3,
        # A Redis of its own: nothing the trainer's process cached or wrote there (live lists).
        **({"REDIS_URL": WEB_REDIS} if settings.REDIS_URL else {}),
        **CREDENTIALS,
    )
    with asgi_server(env, log=tmp_path / "web.log") as base:
        status, body = http(
            "GET",
            f"{base}/api/v1/events/{event.slug}/attendees/p0/recommendations/?num_results=5",
            headers={"Authorization": f"Api-Key {key}"},
        )
    assert status == 200, body[:500]
    answer = json.loads(body)
    assert [item["external_id"] for item in answer["items"]] == expected
    assert (answer["source"], answer["model_version"]) == (result.source, version.number)  # the model's, not a fallback
    downloaded = list((web_disk / f"event-{event.pk}").iterdir())
    assert [sorted(p.name for p in d.iterdir()) for d in downloaded] == [["index.npz", "model.npz"]]


def test_a_version_missing_from_the_bucket_is_unavailable_with_a_message_that_says_so(s3, settings):
    event, _ = _event()
    version = train_event_now(event=event)
    boto3.client("s3", endpoint_url=s3).delete_object(
        Bucket=BUCKET, Key=f"models/event-{event.pk}/{version.artifact.rsplit('/', 1)[1]}/model.npz"
    )
    shutil.rmtree(settings.MODEL_ARTIFACT_ROOT)
    with pytest.raises(Unavailable, match=rf"could not be read from s3://{BUCKET}"):
        LoadedModel(version)
    assert not any(settings.MODEL_ARTIFACT_ROOT.rglob("*.npz"))  # no half-downloaded artifact left
