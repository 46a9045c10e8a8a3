"""The short way for the hottest request: a platform fetching an attendee's suggestions with its
API key, when everything it needs is already in the cache.

`GET /api/v1/events/{event}/attendees/{id}/recommendations/[?num_results=N]` with
`Authorization: Api-Key ...` is served here, in front of Django, only when: the key's entry is in
the cache (only Django's authentication puts valid keys there; revoking or deleting a key drops
it), the caller entry for (the key's organization, event, attendee) is there with current stamps
(only `attendee_for_reader` puts it there, after the full permission check), the host is allowed,
the request needs no redirect to HTTPS, and the query is empty or a plain `num_results` in range.
Then it runs the same serving function, funnel record and output as the view
(`recommendations.api.views.RecommendationsView`) and answers with the same body and headers.
Anything else, or anything unusual, goes to Django unchanged. WHY: on this path Django's request
handling (middleware, URL resolution, DRF's request, negotiation and response) cost about twice
the serving itself; `tests/recommendations/test_fastpath.py` holds the two answers equal."""

import functools
import logging
import re
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from rest_framework.renderers import JSONRenderer

logger = logging.getLogger(__name__)
PATH = re.compile(r"^/api/v1/events/(?P<event>[^/]+)/attendees/(?P<external_id>[^/]+)/recommendations/$")
RENDERER = JSONRenderer()


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


@functools.cache
def _default_num_results() -> int:
    from recommendations.api.serializers import RecommendationsQuerySerializer

    default = RecommendationsQuerySerializer().fields["num_results"].default
    assert isinstance(default, int)  # the field declares one
    return default


def _num_results(query: bytes) -> int | None:
    """The view's `num_results` when the query is nothing else (default and range: the view's
    serializer), None for anything the view's validation should answer."""
    from recommendations.serving import MAX_RESULTS

    if not query:
        return _default_num_results()
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    value = pairs[0][1] if len(pairs) == 1 and pairs[0][0] == "num_results" else ""
    if not (value.isascii() and value.isdigit()):
        return None
    n = int(pairs[0][1])
    return n if 1 <= n <= MAX_RESULTS else None


def _secure(scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy:
        return False
    name = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
    return (_header(scope, name) or b"").decode("latin-1").split(",")[0].strip() == proxy[1]


def serve(scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """The response, or None to let Django answer. Never raises: any failure (Redis or the
    database away) is Django's to answer, with its own error handling (503 and Retry-After)."""
    # What Django does around each request: drop connections that are broken or past their age.
    close_old_connections()
    try:
        return _serve(scope)
    except Exception:
        logger.warning("fast path failed; Django answers", exc_info=True)
        return None
    finally:
        close_old_connections()


def _serve(scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    from events.api.auth import api_key_cached, api_key_secret
    from recommendations.api.permissions import attendee_cached
    from recommendations.api.views import recommendations_output
    from recommendations.funnel import funnel_record_shown
    from recommendations.serving import recommendations_for

    match = PATH.match(scope["path"])
    if match is None or scope["method"] not in ("GET",):
        return None
    if settings.SECURE_SSL_REDIRECT and not _secure(scope):
        return None
    host = (_header(scope, b"host") or b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    if _header(scope, b"origin") is not None:
        return None  # CORS is Django's (the widget middleware)
    num_results = _num_results(scope.get("query_string", b""))
    if num_results is None:
        return None
    secret = api_key_secret((_header(scope, b"authorization") or b"").decode("latin-1"))
    key = api_key_cached(secret) if secret is not None else None
    if key is None:
        return None  # Django authenticates, and records the key's use once a minute
    attendee = attendee_cached(
        organization_id=key.organization_id, event_slug=match["event"], external_id=match["external_id"]
    )
    if attendee is None:
        return None
    result = recommendations_for(attendee=attendee, num_results=num_results)
    funnel_record_shown(viewer=attendee, result=result)
    body = RENDERER.render(recommendations_output(result))
    return 200, _headers(scope, body), body


def _headers(scope, body: bytes) -> list[tuple[bytes, bytes]]:
    """The headers Django gives this response: DRF's (type, Vary, Allow), SecurityMiddleware's and
    XFrameOptionsMiddleware's, read from the same settings."""
    out = [
        ("content-type", "application/json"),
        ("vary", "Accept"),
        ("allow", "GET, HEAD, OPTIONS"),
        ("content-length", str(len(body))),
    ]
    if settings.SECURE_HSTS_SECONDS and _secure(scope):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        out.append(("strict-transport-security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append(("x-content-type-options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        value = policy if isinstance(policy, str) else ",".join(policy)
        out.append(("referrer-policy", ",".join(v.strip() for v in value.split(","))))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append(("cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    out.append(("x-frame-options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()))
    return [(k.encode(), v.encode("latin-1")) for k, v in out]


class RecommendationsFastPath:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            settings.API_FAST_PATH
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and PATH.match(scope["path"])
        ):
            response = await sync_to_async(serve, thread_sensitive=True)(scope)
            if response is not None:
                status, headers, body = response
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
