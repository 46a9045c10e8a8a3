"""Cross-origin access for the embedded widget, and only for it (django-cors-headers decides per
request through this receiver; settings.CORS_* say what it answers).

The widget runs on the platform's own domain and calls the attendee endpoints with an
`Attendee-Token` header, never with cookies. Those calls may come from any origin: the token is the
credential, and without cookies (`Access-Control-Allow-Credentials` is never sent) a foreign page
gains nothing it did not already hold. Preflights of those endpoints are answered by the library
(DRF would demand the credentials a preflight never carries). The JSON catalogue of the widget's
own words (`/jsi18n.json`) may be read from anywhere. Everything else, the API-key calls of the
platform's servers included, keeps the same-origin policy."""

import re

from corsheaders.signals import check_request_enabled
from django.dispatch import receiver

ATTENDEE_PATH = re.compile(r"^/api/v1/events/[^/]+/attendees/[^/]+/")
CATALOGUE_PATH = "/jsi18n.json"  # the widget's words in the browser's language: public, read-only


@receiver(check_request_enabled, dispatch_uid="widget-cors")
def widget_calls_only(sender, request, **kwargs) -> bool:
    """CORS for a preflight of an attendee endpoint, or a call to one with an attendee token; and
    for reading the JavaScript catalogue the embedded widget speaks with."""
    if request.path == CATALOGUE_PATH:
        return request.method == "GET"
    if not ATTENDEE_PATH.match(request.path):
        return False
    if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
        return True
    return request.headers.get("Authorization", "").startswith("Attendee-Token ")
