"""Request-level protections: login rate limits, and a clean 503 while the database is down."""

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

LOGIN_PATHS = ("/admin/login/", "/accounts/login/")
TOO_MANY_LOGINS = "Too many login attempts. Try again in {seconds} seconds."


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
