"""ASGI entry point: HTTP goes to Django, WebSockets through origin validation and session auth
to the routes each app declares in its `routing` module. Serve with daphne or uvicorn."""

import os

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the middleware chain built for sync code and run in one switch
    to the sync thread. Every view here is sync (DRF, the admin), and so is most middleware: built
    for async, Django switched between the event loop and the sync thread several times a request
    (into the chain, back out for the async core, in again for the view), and each switch costs
    CPU under the GIL. The reading of the body, the signals and the sending stay Django's own."""

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


# Django must be set up before anything imports models (the consumers do).
django.setup(set_prefix=False)
django_asgi_app = SyncChainASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from matchmaking_site.gc_tuning import tune_for_serving  # noqa: E402
from matchmaking_site.routing import websocket_urlpatterns  # noqa: E402
from recommendations.api.fastpath import RecommendationsFastPath  # noqa: E402


def _carries_token(scope) -> bool:
    return any(part.startswith(b"token=") for part in scope.get("query_string", b"").split(b"&"))


class OriginValidatedUnlessToken:
    """The origin check stops other sites from riding a visitor's session cookie. A socket that
    presents an attendee token (the embedded widget, on the platform's own domain) carries its
    credential explicitly, so any origin may open it; the consumers then use the token only,
    never the session."""

    def __init__(self, inner):
        self.inner = inner
        self.validated = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        app = self.inner if _carries_token(scope) else self.validated
        return await app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": RecommendationsFastPath(django_asgi_app),
        "websocket": OriginValidatedUnlessToken(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Last: everything loaded so far is frozen out of the garbage collector's reach (gc_tuning.py).
tune_for_serving()
