"""The short way for the hottest request: a platform fetching an attendee's suggestions with its
API key, when everything it needs is already in the cache.

`GET /api/v1/events/{event}/attendees/{id}/recommendations/[?num_results=N]` with
`Authorization: Api-Key ...` is served here, in front of Django's handler, only when: the key's
entry is in the cache (only Django's authentication puts valid keys there, and only while their
last use is recorded; revoking or deleting a key drops it), the caller entry for (the key's
organization, event, attendee) is there with current stamps (only `attendee_for_reader` puts it
there, after the full permission check), the query is empty or a plain `num_results` in range, and
the client accepts JSON. Then the request goes through Django's own middleware chain (every
entry of settings.MIDDLEWARE: host validation, the HTTPS redirect, CORS, security headers, and
whatever is added later), whose innermost step, instead of URL resolution and DRF, runs the same
serving function, funnel record and output as the view (`views.RecommendationsView`); if that step
fails, the view itself answers inside the same chain. Anything else goes to Django unchanged.
WHY: URL resolution, DRF's request, authentication, negotiation and response cost about as much
as the serving itself; `tests/recommendations/test_fastpath.py` holds the two answers equal and
pins the middleware and the view's policies this path stands in for."""

import functools
import io
import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve
from rest_framework.renderers import JSONRenderer

logger = logging.getLogger(__name__)
PATH = re.compile(r"^/api/v1/events/(?P<event>[^/]+)/attendees/(?P<external_id>[^/]+)/recommendations/$")
RENDERER = JSONRenderer()
JSON_ACCEPTS = (b"", b"*/*", b"application/json")  # what DRF answers with JSON, like this path


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
    from recommendations.serving.lists import MAX_RESULTS

    if not query:
        return _default_num_results()
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    value = pairs[0][1] if len(pairs) == 1 and pairs[0][0] == "num_results" else ""
    if not (value.isascii() and value.isdigit()):
        return None
    n = int(pairs[0][1])
    return n if 1 <= n <= MAX_RESULTS else None


class _FastRequest(ASGIRequest):
    """Django's request, carrying the answer the chain's innermost step gives (None: the view's)."""

    fast_answer: Callable[[], HttpResponse] | None = None


class _ChainHandler(BaseHandler):
    """Django's middleware chain (settings.MIDDLEWARE, built for sync code like the site's handler)
    around an answer made here; the view answers if making it fails."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    def _get_response(self, request):
        answer = getattr(request, "fast_answer", None)
        if answer is not None:
            try:
                return answer()
            except Exception:
                logger.warning("fast path failed; the view answers", exc_info=True)
        return super()._get_response(request)


@functools.cache
def _allow() -> str:
    """DRF's Allow header for the view: its methods once set up (Django adds HEAD to a GET)."""
    from recommendations.api.views import RecommendationsView

    view = RecommendationsView()
    view.setup(HttpRequest())
    return ", ".join(view.allowed_methods)


def serve(handler: _ChainHandler, scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """The response, or None to let Django's handler answer. Never raises: a failure before the
    chain is Django's to answer, with its own error handling (503 and Retry-After)."""
    # What Django does around each request: drop connections that are broken or past their age.
    close_old_connections()
    try:
        request = _fast_request(scope)
        if request is None:
            return None
    except Exception:
        logger.warning("fast path failed; Django answers", exc_info=True)
        close_old_connections()
        return None
    try:
        response = handler.get_response(request)
        # An HttpResponse whatever answers: this step's, the view's (DRF's Response) or a
        # middleware's (a redirect, a 400); none of them streams.
        assert isinstance(response, HttpResponse)
        headers = [(k.encode("ascii"), v.encode("latin-1")) for k, v in response.items()]
        headers += [(b"Set-Cookie", c.OutputString().encode("ascii").strip()) for c in response.cookies.values()]
        return response.status_code, headers, response.content
    finally:
        close_old_connections()


def _fast_request(scope) -> _FastRequest | None:
    """Django's request for `scope` with its answer attached, when the cache proves everything the
    view would check; None otherwise."""
    from events.api.auth import api_key_cached, api_key_secret
    from recommendations.api.permissions import attendee_cached
    from recommendations.api.views import recommendations_output
    from recommendations.serving.funnel import funnel_record_shown
    from recommendations.serving.lists import recommendations_for

    match = PATH.match(scope["path"])
    if match is None or scope["method"] != "GET":
        return None
    if (_header(scope, b"accept") or b"").strip() not in JSON_ACCEPTS:
        return None  # DRF negotiates (the browsable API, 406)
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

    def answer() -> HttpResponse:
        result = recommendations_for(attendee=attendee, num_results=num_results)
        funnel_record_shown(viewer=attendee, result=result)
        response = HttpResponse(RENDERER.render(recommendations_output(result)), content_type="application/json")
        response["Vary"] = "Accept"  # DRF's negotiation header
        response["Allow"] = _allow()
        return response

    request = _FastRequest(scope, io.BytesIO())
    request.fast_answer = answer
    request.resolver_match = _resolver_match(match["event"], match["external_id"])
    return request


@functools.cache
def _route() -> ResolverMatch:
    """The view's URL match, resolved once: the route the metrics and the access log name."""
    return resolve("/api/v1/events/e/attendees/a/recommendations/")


def _resolver_match(event: str, external_id: str) -> ResolverMatch:
    """What URL resolution would have set on the request (the view's route and this request's
    arguments), without resolving: the metrics (request latency is labelled by route) and
    the access log count the short way under the view's own name."""
    route = _route()
    return ResolverMatch(
        route.func,
        (),
        {"event": event, "external_id": external_id},
        url_name=route.url_name,
        app_names=list(route.app_names),
        namespaces=list(route.namespaces),
        route=route.route,
    )


class RecommendationsFastPath:
    def __init__(self, app):
        self.app = app
        # Built now, as Django's own handler is: middleware reads its settings when constructed.
        self.handler = _ChainHandler()

    async def __call__(self, scope, receive, send):
        if (
            settings.API_FAST_PATH
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and PATH.match(scope["path"])
        ):
            response = await sync_to_async(serve, thread_sensitive=True)(self.handler, scope)
            if response is not None:
                status, headers, body = response
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
