"""boto3 client factories, one per service, so that tests attach botocore Stubbers to the very
clients the code uses (`Stubber(clients.personalize())`), and the configuration problem, if any.

Credentials come from the usual boto3 chain; region, role, bucket and prefix from settings.
"""

import threading
from functools import cache

import boto3
from botocore.config import Config
from django.conf import settings

MISSING_SETTINGS = "Amazon Personalize is not configured: {names} not set in the environment."

# The control plane does not retry inside the call: the run's state machine owns retries, with
# backoff and jitter between Celery executions, so that no worker ever sleeps waiting for AWS.
_CONTROL = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 1})
# Serving sits on the attendee's request: fail fast and let the caller fall back to the local
# model or the rules engine rather than hold the request on a slow or unreachable endpoint.
_RUNTIME = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 1})
_EVENTS = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1})
_S3 = Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "total_max_attempts": 3})


def configuration_problem() -> str:
    """The reason the backend cannot run, or "" when region, role and bucket are all set."""
    missing = [
        name
        for name in ("AWS_REGION", "PERSONALIZE_ROLE_ARN", "PERSONALIZE_BUCKET")
        if not str(getattr(settings, name, "") or "").strip()
    ]
    return MISSING_SETTINGS.format(names=", ".join(missing)) if missing else ""


_lock = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    # One session: it caches the service models (Personalize's is large) and the credentials.
    return boto3.session.Session()


def _client(service: str, config: Config):
    with _lock:  # creating clients from one session is not thread-safe; using them is
        return _session().client(service, region_name=settings.AWS_REGION or None, config=config)


@cache
def personalize():
    return _client("personalize", _CONTROL)


@cache
def personalize_runtime():
    return _client("personalize-runtime", _RUNTIME)


@cache
def personalize_events():
    return _client("personalize-events", _EVENTS)


@cache
def s3():
    return _client("s3", _S3)


def reset() -> None:
    """Forget the cached clients (after a settings change, and between tests)."""
    for factory in (personalize, personalize_runtime, personalize_events, s3):
        factory.cache_clear()
