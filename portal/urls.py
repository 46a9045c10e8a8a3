from django.urls import path

from . import meetings, views

app_name = "portal"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("language/", views.set_language, name="set-language"),
    path("e/<slug:event>/", views.lobby, name="lobby"),
    path("e/<slug:event>/about/", views.about, name="about"),
    path("e/<slug:event>/login/<str:token>/", views.login_link, name="login-link"),
    path("e/<slug:event>/rooms/<str:room>/", views.room, name="room"),
    path("e/<slug:event>/content/<str:content>/", views.content, name="content"),
    path("e/<slug:event>/consents/", views.consents, name="consents"),
    path("e/<slug:event>/profile/", views.profile, name="profile"),
    path("e/<slug:event>/people/", views.directory, name="directory"),
    path("e/<slug:event>/connections/", views.connections, name="connections"),
    path(
        "e/<slug:event>/connections/<int:connection_id>/respond/", views.connection_respond, name="connection-respond"
    ),
    path("e/<slug:event>/connections/<int:connection_id>/messages/", views.thread, name="thread"),
    path("e/<slug:event>/meetings/", meetings.meetings_page, name="meetings"),
    path("e/<slug:event>/meetings/new/<str:other>/", meetings.meeting_new, name="meeting-new"),
    path("e/<slug:event>/meetings/<int:meeting_id>/calendar.ics", meetings.meeting_calendar, name="meeting-calendar"),
    path("e/<slug:event>/meetings/<int:meeting_id>/join/", meetings.meeting_join, name="meeting-join"),
    path("e/<slug:event>/meetings/<int:meeting_id>/<str:action>/", meetings.meeting_act, name="meeting-act"),
]
