"""Cross-origin access for the embedded widget, and only for it.

The widget runs on the platform's own domain and calls the attendee endpoints with an
`Attendee-Token` header, never with cookies. Those calls may come from any origin: the token is the
credential, and without cookies (`Access-Control-Allow-Credentials` is never sent) a foreign page
gains nothing it did not already hold. Preflights are answered here because DRF would demand the
credentials a preflight never carries. Everything else keeps the same-origin policy."""

import re

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers

ATTENDEE_PATH = re.compile(r"^/api/v1/events/[^/]+/attendees/[^/]+/")
ALLOW_HEADERS = "Authorization, Content-Type"
ALLOW_METHODS = "GET, POST, PATCH, OPTIONS"
MAX_AGE = "600"


class WidgetCorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not ATTENDEE_PATH.match(request.path) or "HTTP_ORIGIN" not in request.META:
            return self.get_response(request)
        if request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response["Access-Control-Max-Age"] = MAX_AGE
        else:
            response = self.get_response(request)
            if not request.META.get("HTTP_AUTHORIZATION", "").startswith("Attendee-Token "):
                return response
        response["Access-Control-Allow-Origin"] = "*"
        patch_vary_headers(response, ("Origin",))  # added to the view's (DRF's `Vary: Accept`), never instead
        return response
