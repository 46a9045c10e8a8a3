from django.urls import path

from recommendations.api import views

app_name = "recommendations-api"

ATTENDEE = "events/<slug:event>/attendees/<str:external_id>/"

urlpatterns = [
    path(f"{ATTENDEE}recommendations/", views.RecommendationsView.as_view(), name="recommendations"),
    path(f"{ATTENDEE}recommendations/opened/", views.OpenedView.as_view(), name="opened"),
]
