from django.urls import path

from . import attendees, facts, meetings, messages, privacy, views, webhooks

app_name = "api"

ATTENDEE = "events/<slug:event>/attendees/<str:external_id>/"
MEETING = ATTENDEE + "meetings/<int:meeting_id>/"

urlpatterns = [
    path("events/", views.EventListView.as_view(), name="event-list"),
    path("webhooks/", webhooks.WebhookEndpointListView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", webhooks.WebhookEndpointDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<int:pk>/secret/", webhooks.WebhookSecretRotateView.as_view(), name="webhook-secret"),
    path("webhooks/<int:pk>/deliveries/", webhooks.WebhookDeliveryListView.as_view(), name="webhook-deliveries"),
    path("events/<slug:event>/", views.EventDetailView.as_view(), name="event-detail"),
    path("events/<slug:event>/interactions/", views.InteractionBatchView.as_view(), name="interaction-batch"),
    path("events/<slug:event>/attendees/", facts.AttendeeUpsertView.as_view(), name="attendee-upsert"),
    path("events/<slug:event>/rooms/", facts.RoomUpsertView.as_view(), name="room-upsert"),
    path("events/<slug:event>/contents/", facts.ContentUpsertView.as_view(), name="content-upsert"),
    path("events/<slug:event>/interest-tags/", facts.InterestTagUpsertView.as_view(), name="interest-tag-upsert"),
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
    path(f"{ATTENDEE}connections/", attendees.ConnectionRequestView.as_view(), name="connection-request"),
    path(
        f"{ATTENDEE}connections/<int:connection_id>/accept/",
        attendees.ConnectionRespondView.as_view(accept=True),
        name="connection-accept",
    ),
    path(
        f"{ATTENDEE}connections/<int:connection_id>/withdraw/",
        attendees.ConnectionWithdrawView.as_view(),
        name="connection-withdraw",
    ),
    path(
        f"{ATTENDEE}connections/<int:connection_id>/decline/",
        attendees.ConnectionRespondView.as_view(accept=False),
        name="connection-decline",
    ),
    path(
        f"{ATTENDEE}connections/<int:connection_id>/messages/",
        messages.ThreadView.as_view(),
        name="connection-messages",
    ),
    path(f"{ATTENDEE}blocks/", attendees.BlockView.as_view(), name="block"),
    path(f"{ATTENDEE}blocks/<str:other>/", attendees.UnblockView.as_view(), name="unblock"),
    path(f"{ATTENDEE}not-relevant/", attendees.NotRelevantView.as_view(), name="not-relevant"),
    path(f"{ATTENDEE}not-relevant/<str:other>/", attendees.NotRelevantUndoView.as_view(), name="not-relevant-undo"),
    path(f"{ATTENDEE}meetings/", meetings.MeetingListView.as_view(), name="meetings"),
    path(f"{ATTENDEE}meetings/slots/", meetings.MeetingSlotsView.as_view(), name="meeting-slots"),
    path(f"{MEETING}accept/", meetings.MeetingAcceptView.as_view(), name="meeting-accept"),
    path(f"{MEETING}propose/", meetings.MeetingCounterView.as_view(), name="meeting-counter"),
    path(f"{MEETING}decline/", meetings.MeetingDeclineView.as_view(), name="meeting-decline"),
    path(f"{MEETING}cancel/", meetings.MeetingCancelView.as_view(), name="meeting-cancel"),
    path(f"{MEETING}check-in/", meetings.MeetingCheckInView.as_view(), name="meeting-check-in"),
    path(f"{MEETING}calendar.ics", meetings.MeetingCalendarView.as_view(), name="meeting-calendar"),
    path(f"{ATTENDEE}consents/", attendees.ConsentsView.as_view(), name="consents"),
    path(f"{ATTENDEE}token/", attendees.WidgetTokenView.as_view(), name="widget-token"),
    path(f"{ATTENDEE}content-views/", attendees.ContentViewedView.as_view(), name="content-viewed"),
]
