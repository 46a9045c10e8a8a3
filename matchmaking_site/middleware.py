"""Request-level protections: the health check before host validation, login rate limits, a clean
503 while the database is down, and JSON errors (never a debug page, never internals) on every API
path."""

import functools
import logging
import time

import sentry_sdk
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django_guid import get_guid

from matchmaking_site import health, metrics
from matchmaking_site.cache import count_up
from matchmaking_site.metrics import REQUEST_SECONDS

LOGIN_PATHS = ("/admin/login/", "/accounts/login/")
HEALTH_PATH = "/healthz"
access_logger = logging.getLogger("matchmaking.access")

TOO_MANY_LOGINS = "Too many login attempts. Try again in {seconds} seconds."


class HealthCheckMiddleware:
    """Answers the probes and the metrics scrape before anything can turn them away. A container
    or load-balancer probe, and Prometheus, call the process by its own address
    (`http://10.0.3.7:8000/readyz`), which is not a name of ALLOWED_HOSTS and not HTTPS: in
    production, host validation answered 400 and the HTTPS redirect 301, so the probe never saw
    the services' state. `/healthz` (process and database, `events.views.healthz`), `/livez` and
    `/readyz` (`matchmaking_site.health`) say nothing but that; `/metrics` needs its bearer token
    (`matchmaking_site.metrics`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("GET", "HEAD"):
            answer = _probes().get(request.path)
            if answer is not None:
                return answer(request)
        return self.get_response(request)


@functools.cache
def _probes() -> dict:
    """Path -> view of what this middleware answers (built once; every GET looks it up)."""
    from events.views import healthz

    return {
        HEALTH_PATH: healthz,
        health.LIVE_PATH: health.live,
        health.READY_PATH: health.ready,
        metrics.METRICS_PATH: metrics.metrics_view,
    }


class RequestLogMiddleware:
    """Each request's latency in the metrics (by route, method, status class), and one log line per
    request with its id (django-guid's, on every line of the request), method, route, status and
    duration: the access log, which the ASGI server's own cannot give (it knows neither the id nor
    the route). Runs for the fast path too, which goes through this chain."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        if settings.SENTRY_DSN:  # the request's error reports carry its id
            sentry_sdk.set_tag("request_id", get_guid())
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.view_name if match is not None else "<unresolved>"
        seconds = time.perf_counter() - started
        REQUEST_SECONDS.labels(route, request.method, f"{response.status_code // 100}xx").observe(seconds)
        if not access_logger.isEnabledFor(logging.INFO):  # ACCESS_LOG off: nothing to build
            return response
        access_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
        return response


class LoginRateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path in LOGIN_PATHS:
            window = settings.LOGIN_RATE_WINDOW_SECONDS
            keys = [f"login-rate:ip:{request.META.get('REMOTE_ADDR', '')}"]
            username = request.POST.get("username", "").strip().lower()
            if username:
                keys.append(f"login-rate:user:{username}")
            for key in keys:
                attempts = count_up(cache, key, timeout=window)  # a new window once it expired
                if attempts > settings.LOGIN_RATE_LIMIT:
                    response = HttpResponse(TOO_MANY_LOGINS.format(seconds=window), status=429)
                    response["Retry-After"] = str(window)
                    return response
        return self.get_response(request)


DATABASE_UNAVAILABLE = "The database is unavailable; retry shortly."
DATABASE_RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    """While the database is down (a restart, a failover), answer 503 with Retry-After instead of
    a 500 traceback. Connections are health-checked before reuse (CONN_HEALTH_CHECKS), so the
    first request after the database returns reconnects: no restart of the app is needed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        response = JsonResponse({"detail": DATABASE_UNAVAILABLE}, status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response


API_PREFIX = "/api/"
API_ERROR_MESSAGES = {
    400: "Bad request.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    500: "Server error.",
}


class ApiJsonErrorsMiddleware:
    """Under /api/ every error is JSON, whatever DEBUG is: a path no route matches (Django's 404
    page), an unhandled exception (its 500 page, with the traceback while DEBUG is on), a body
    Django refuses (400, 413). The answer is a fixed message per status; the exception is still
    logged by Django ("django.request") before its page is replaced here. DRF's own responses are
    left alone: they are already JSON, or the browsable API's page a browser asked for.

    Placed outside DatabaseUnavailableMiddleware, which turns a lost database into its own 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(API_PREFIX)
            and getattr(response, "accepted_renderer", None) is None
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            message = API_ERROR_MESSAGES.get(status) or API_ERROR_MESSAGES[500 if status >= 500 else 400]
            replaced = JsonResponse({"detail": message}, status=status)
            for header in ("Retry-After", "Allow", "WWW-Authenticate"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response


NUL_IN_PATH = "The path must not contain NUL characters."
NUL_IN_PARAMETER = "Null characters are not allowed."  # DRF's and Django's own words for a field


class RefuseNulMiddleware:
    """PostgreSQL text refuses NUL, so a NUL that reached a query was a 500. Bodies are checked
    field by field (DRF and Django forms refuse NUL in every text field, ingestion per item); the
    URL is checked here, once for every view: a NUL in the path or in a query parameter is a 400
    naming where it was."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        errors = {}
        if "\x00" in request.path:
            errors["detail"] = NUL_IN_PATH
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                errors[key.replace("\x00", "\\x00")] = [NUL_IN_PARAMETER]
        if not errors:
            return self.get_response(request)
        if request.path.startswith(API_PREFIX):
            return JsonResponse(errors, status=400)
        return HttpResponseBadRequest(
            NUL_IN_PATH if "detail" in errors else NUL_IN_PARAMETER, content_type="text/plain"
        )
