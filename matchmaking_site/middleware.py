"""Request-level protections: the health check before host validation, login rate limits, a clean
503 while the database is down, and JSON errors (never a debug page, never internals) on every API
path."""

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse

LOGIN_PATHS = ("/admin/login/", "/accounts/login/")
HEALTH_PATH = "/healthz"
TOO_MANY_LOGINS = "Too many login attempts. Try again in {seconds} seconds."


class HealthCheckMiddleware:
    """Answers the health check before anything can turn it away. A container or load-balancer
    probe calls the process by its own address (`http://127.0.0.1:8000/healthz`), which is not a
    name of ALLOWED_HOSTS and not HTTPS: in production, host validation answered it 400 and the
    HTTPS redirect 301, so the probe never saw the database's state. The answer says nothing but
    that (`events.views.healthz`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            from events.views import healthz

            return healthz(request)
        return self.get_response(request)


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
                cache.add(key, 0, timeout=window)
                try:
                    attempts = cache.incr(key)
                except ValueError:  # expired between add and incr: start a new window
                    cache.set(key, 1, timeout=window)
                    attempts = 1
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
