from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/admin/events/<int:event_id>/dashboard/", consumers.DashboardConsumer.as_asgi()),
]
