from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/ping/", consumers.PingConsumer.as_asgi()),
    path("ws/events/<slug:event>/rooms/<str:room>/presence/", consumers.RoomPresenceConsumer.as_asgi()),
]
