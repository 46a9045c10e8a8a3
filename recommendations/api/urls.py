from django.urls import path

from recommendations.api import views

app_name = "recommendations-api"

ATTENDEE = "events/<slug:event>/attendees/<str:external_id>/"

urlpatterns = [
    path(f"{ATTENDEE}recommendations/", views.RecommendationsView.as_view(), name="recommendations"),
    path(f"{ATTENDEE}recommendations/opened/", views.OpenedView.as_view(), name="opened"),
    path(f"{ATTENDEE}connections/", views.ConnectionRequestView.as_view(), name="connection-request"),
    path(
        f"{ATTENDEE}connections/<int:connection_id>/accept/",
        views.ConnectionRespondView.as_view(accept=True),
        name="connection-accept",
    ),
    path(
        f"{ATTENDEE}connections/<int:connection_id>/decline/",
        views.ConnectionRespondView.as_view(accept=False),
        name="connection-decline",
    ),
    path(f"{ATTENDEE}blocks/", views.BlockView.as_view(), name="block"),
    path(f"{ATTENDEE}not-relevant/", views.NotRelevantView.as_view(), name="not-relevant"),
    path(f"{ATTENDEE}consents/", views.ConsentsView.as_view(), name="consents"),
    path(f"{ATTENDEE}token/", views.WidgetTokenView.as_view(), name="widget-token"),
    path(f"{ATTENDEE}content-views/", views.ContentViewedView.as_view(), name="content-viewed"),
]
