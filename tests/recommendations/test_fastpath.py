"""The short way in front of Django for a platform's cached suggestions request
(`recommendations/api/fastpath.py`): the same answer as Django, byte for byte and header for header,
and Django's answer whenever anything is not already proven by the cache."""

import json
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_started
from django.test import override_settings

from events.services import api_key_create, api_key_revoke, block_create
from matchmaking_site.asgi import SyncChainASGIHandler, application
from recommendations.api.fastpath import RecommendationsFastPath
from recommendations.api.permissions import CALLER_TTL  # noqa: F401  (the entry the short way reads)
from tests.factories import AttendeeFactory, OrganizationFactory

from . import backends
from .factories import ServingEventFactory, attendees

# Django's ASGI handler runs each request's sync code on a thread of its own: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


REQUEST_ID = b"3d5f0e52-8a4b-4f64-9a51-6c1f2b9e7d20"


@async_to_sync
async def _get(path: str, query: bytes = b"", headers: tuple = (), app=None) -> tuple[int, dict, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        # One request id for every request unless given: it is echoed, and the answers compared.
        "headers": [(b"host", b"testserver"), *headers]
        + ([] if any(k == b"x-request-id" for k, _ in headers) else [(b"x-request-id", REQUEST_ID)]),
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    app = ApplicationCommunicator(app or application, scope)
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await app.receive_output(10)
    body = b""
    while True:
        part = await app.receive_output(10)
        body += part.get("body", b"")
        if not part.get("more_body"):
            break
    await app.wait(10)  # let the handler finish (request_finished closes its database connection)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


class Djangos:
    """Counts the requests Django's handler took (it sends `request_started` for each)."""

    def __init__(self):
        self.n = 0

    def __enter__(self):
        request_started.connect(self.count)
        return self

    def __exit__(self, *exc):
        request_started.disconnect(self.count)

    def count(self, **kwargs):
        self.n += 1


@pytest.fixture
def world():
    event = ServingEventFactory(slug="fast-summit")
    viewer, a, b = attendees(event, 3)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 2.0), (b.pk, 1.0)]}
    _, secret = api_key_create(organization=event.organization, name="platform")
    path = f"/api/v1/events/{event.slug}/attendees/{viewer.external_id}/recommendations/"
    return SimpleNamespace(event=event, viewer=viewer, a=a, b=b, secret=secret, path=path)


def _auth(secret: str) -> tuple:
    return ((b"authorization", f"Api-Key {secret}".encode()),)


def _warm(path, secret, headers=None, app=None):
    """Django answers the first requests and fills the key, caller and list entries."""
    for _ in range(2):
        status, _, _ = _get(path, headers=headers or _auth(secret), app=app)
        assert status == 200


def test_the_short_way_answers_like_django(world, settings):
    w = world
    _warm(w.path, w.secret)
    with Djangos() as django_handled:
        fast = _get(w.path, b"num_results=5", _auth(w.secret))
    assert django_handled.n == 0  # served in front of Django
    settings.API_FAST_PATH = False
    with Djangos() as django_handled:
        slow = _get(w.path, b"num_results=5", _auth(w.secret))
    assert django_handled.n == 1
    assert fast[0] == slow[0] == 200
    assert fast[1] == slow[1]  # every header
    assert fast[2] == slow[2]  # every byte
    assert [item["external_id"] for item in json.loads(fast[2])["items"]] == [w.a.external_id, w.b.external_id]


def test_behind_https_it_sends_the_same_security_headers(world, settings):
    """Production settings: HTTPS required (redirect otherwise), HSTS; the proxy says https."""
    w = world
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    # Django's middleware reads these settings when the handler is built: build one under them.
    app = RecommendationsFastPath(SyncChainASGIHandler())
    https = (*_auth(w.secret), (b"x-forwarded-proto", b"https"))
    _warm(w.path, w.secret, https, app=app)
    with Djangos() as django_handled:
        fast = _get(w.path, b"", https, app=app)
    assert django_handled.n == 0
    settings.API_FAST_PATH = False
    slow = _get(w.path, b"", https, app=app)
    assert fast == slow
    assert fast[1]["strict-transport-security"] == "max-age=3600; includeSubDomains; preload"
    plain_slow = _get(w.path, b"", _auth(w.secret), app=app)  # plain http: Django's middleware redirects
    settings.API_FAST_PATH = True
    plain = _get(w.path, b"", _auth(w.secret), app=app)  # the same middleware, on the short way
    assert plain[0] == 301 and plain == plain_slow


def _short_and_long_way(w, headers):
    """The same warm request answered on the short way (Django's handler not entered) and by
    Django's full path: (fast, slow)."""
    _warm(w.path, w.secret, headers)
    with Djangos() as django_handled:
        fast = _get(w.path, b"", headers)
    assert django_handled.n == 0
    with override_settings(API_FAST_PATH=False):
        slow = _get(w.path, b"", headers)
    return fast, slow


def test_a_french_reader_gets_the_same_answer_and_language_on_the_short_way(world):
    fast, slow = _short_and_long_way(world, (*_auth(world.secret), (b"accept-language", b"fr-FR,fr;q=0.9")))
    assert fast == slow
    assert fast[1]["content-language"] == "fr" and "Accept-Language" in fast[1]["vary"]


def test_a_cross_origin_request_gets_what_the_cors_middleware_says_on_the_short_way(world):
    fast, slow = _short_and_long_way(world, (*_auth(world.secret), (b"origin", b"https://platform.example")))
    assert fast == slow
    assert "access-control-allow-origin" not in fast[1]  # CORS is for the widget's token only


def test_the_policies_the_short_way_stands_in_for_are_pinned():
    """The short way runs settings.MIDDLEWARE but not the view's DRF policies, which it checks
    through the cache instead (the key's authentication, the caller's permission, no throttle).
    A change to either list must be looked at here: add the new policy to the short way (or turn
    the short way off for it), then update this list."""
    from django.conf import settings as django_settings

    from events.api.auth import ApiKeyAuthentication, AttendeeTokenAuthentication
    from recommendations.api.views import RecommendationsView

    assert django_settings.MIDDLEWARE == [
        "matchmaking_site.middleware.HealthCheckMiddleware",  # answers the probes and /metrics only
        "django_guid.middleware.guid_middleware",
        "matchmaking_site.middleware.RequestLogMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "matchmaking_site.middleware.ApiJsonErrorsMiddleware",
        "matchmaking_site.middleware.RefuseNulMiddleware",
        "matchmaking_site.middleware.DatabaseUnavailableMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.locale.LocaleMiddleware",  # the reasons' language: the short way runs it too
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "matchmaking_site.middleware.LoginRateLimitMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
    view = RecommendationsView()
    assert [type(a) for a in view.get_authenticators()][:2] == [ApiKeyAuthentication, AttendeeTokenAuthentication]
    assert [type(p).__name__ for p in view.get_permissions()] == ["IsAuthenticated"]
    assert [type(t).__name__ for t in view.get_throttles()] == ["ScopedRateThrottle"]
    assert getattr(view, "throttle_scope", None) is None  # ScopedRateThrottle limits nothing without one


def test_a_block_reaches_the_very_next_request(world):
    w = world
    _warm(w.path, w.secret)
    block_create(blocker=w.viewer, blocked=w.a)  # bumps the viewer's stamp: the caller entry is stale
    with Djangos() as django_handled:
        status, _, body = _get(w.path, headers=_auth(w.secret))
    assert django_handled.n == 1 and status == 200
    assert [item["external_id"] for item in json.loads(body)["items"]] == [w.b.external_id]


def test_a_revoked_key_is_refused_at_once(world):
    w = world
    _warm(w.path, w.secret)
    key = w.event.organization.api_keys.get()
    api_key_revoke(api_key=key)
    status, _, _ = _get(w.path, headers=_auth(w.secret))
    assert status in (401, 403)


def test_another_organizations_key_never_gets_the_list(world):
    w = world
    _warm(w.path, w.secret)
    _, other = api_key_create(organization=OrganizationFactory(), name="other platform")
    for _ in range(3):  # whatever it caches for itself
        status, _, body = _get(w.path, headers=_auth(other))
        assert status == 404 and w.a.external_id.encode() not in body


@pytest.mark.parametrize(
    "query, headers",
    [
        (b"num_results=abc", ()),  # Django's 400 with a message per field
        (b"num_results=0", ()),
        (b"num_results=5&x=1", ()),
        (b"", ((b"accept", b"text/html"),)),  # DRF negotiates (the browsable API)
    ],
)
def test_anything_unusual_goes_to_django(world, query, headers):
    w = world
    _warm(w.path, w.secret)
    with Djangos() as django_handled:
        _get(w.path, query, _auth(w.secret) + headers)
    assert django_handled.n == 1


def test_unknown_attendee_goes_to_django_and_gets_404(world):
    w = world
    _warm(w.path, w.secret)
    stranger = AttendeeFactory()  # another w.event
    status, _, _ = _get(w.path.replace(w.viewer.external_id, stranger.external_id), headers=_auth(w.secret))
    assert status == 404


def test_the_short_way_is_measured_and_logged_under_the_views_route(world, caplog):
    """The request metric is labelled by the resolved route, which the short way does not
    resolve: it sets the view's own match, so both ways count in one series, and the access line
    names the route and carries the request id."""
    from prometheus_client import REGISTRY

    w = world
    _warm(w.path, w.secret)
    labels = {"route": "recommendations-api:recommendations", "method": "GET", "status": "2xx"}
    name = "matchmaking_http_request_seconds_count"
    before = REGISTRY.get_sample_value(name, labels)
    request_id = "6f1f7a3e-51b5-4d0c-a7f3-0b7f3c2a9e11"
    with Djangos() as django_handled, caplog.at_level("INFO", logger="matchmaking.access"):
        status, headers, _ = _get(w.path, headers=(*_auth(w.secret), (b"x-request-id", request_id.encode())))
    assert (status, django_handled.n) == (200, 0)
    assert REGISTRY.get_sample_value(name, labels) == before + 1
    assert headers["x-request-id"] == request_id
    (line,) = [r for r in caplog.records if r.name == "matchmaking.access"]
    assert (line.route, line.status, line.path) == ("recommendations-api:recommendations", 200, w.path)
