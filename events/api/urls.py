from django.urls import path

from . import privacy, views

app_name = "api"

urlpatterns = [
    path("events/", views.EventListView.as_view(), name="event-list"),
    path("events/<slug:event>/", views.EventDetailView.as_view(), name="event-detail"),
    path("events/<slug:event>/interactions/", views.InteractionBatchView.as_view(), name="interaction-batch"),
    path(
        "events/<slug:event>/attendees/<str:external_id>/",
        privacy.AttendeeEraseView.as_view(),
        name="attendee-erase",
    ),
    path(
        "events/<slug:event>/attendees/<str:external_id>/data/",
        privacy.AttendeeDataView.as_view(),
        name="attendee-data",
    ),
    path(
        "events/<slug:event>/questionnaire/hydrate/",
        views.QuestionnaireHydrateView.as_view(),
        name="questionnaire-hydrate",
    ),
]
