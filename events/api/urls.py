from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("events/", views.EventListView.as_view(), name="event-list"),
    path("events/<slug:event>/", views.EventDetailView.as_view(), name="event-detail"),
    path("events/<slug:event>/interactions/", views.InteractionBatchView.as_view(), name="interaction-batch"),
    path(
        "events/<slug:event>/questionnaire/hydrate/",
        views.QuestionnaireHydrateView.as_view(),
        name="questionnaire-hydrate",
    ),
]
