"""Error reporting to Sentry, when ``SENTRY_DSN`` is set (settings call `init_sentry`)."""

from __future__ import annotations

from typing import Any


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float = 0.0, **options: Any) -> None:
    """Unhandled exceptions of requests and Celery tasks go to Sentry, tagged with the request id
    (`RequestLogMiddleware` sets the tag); no personal data: no user, no request bodies, no local
    variables of the stack frames (they hold attendees' names), sensitive headers and cookies
    scrubbed by the SDK's denylist. ``options`` reach ``sentry_sdk.init`` (tests pass a transport)."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        data_collection={"user_info": False, "http_bodies": [], "stack_frame_variables": False},
        **options,
    )
