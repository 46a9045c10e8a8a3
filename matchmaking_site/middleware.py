"""Brute-force protection for logins: a fixed window per client address and per username."""

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse

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
