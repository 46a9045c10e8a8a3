from django.urls import path

from recommendations.live import consumers

websocket_urlpatterns = [
    path("ws/events/<slug:event>/suggestions/", consumers.SuggestionsConsumer.as_asgi()),
]
