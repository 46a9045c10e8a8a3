"""Every WebSocket route of the project, gathered from the apps' `routing` modules."""

from dashboard.routing import websocket_urlpatterns as dashboard_ws
from events.routing import websocket_urlpatterns as events_ws
from recommendations.live.routing import websocket_urlpatterns as recommendations_ws

websocket_urlpatterns = [*events_ws, *recommendations_ws, *dashboard_ws]
