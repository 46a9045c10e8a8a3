"""Choices shared by models, services and the API. Imported by everything; imports nothing."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Phase(models.TextChoices):
    COLD = "cold", _("Cold start (rules)")
    LIVE = "live", _("Live (trained model)")
    ON_DEMAND = "on_demand", _("On demand (batch table)")
    CLOSED = "closed", _("Closed")


class Backend(models.TextChoices):
    LOCAL = "local", "Local model"
    PERSONALIZE = "personalize", "Amazon Personalize"


class EnginePreset(models.TextChoices):
    """What an event's contexts are, for the local model's settings
    (recommendations.backends.local.fit.CONFIG_PRESETS)."""

    ROOMS = "", "Rooms, talks and content (default settings)"
    FACE_TO_FACE = "face-to-face", "Face-to-face contact sessions (proximity badges)"


class InteractionType(models.TextChoices):
    JOIN_ROOM = "join_room", "Joined a room"
    LEAVE_ROOM = "leave_room", "Left a room"
    VIEW_CONTENT = "view_content", "Viewed content"
    QUESTIONNAIRE = "questionnaire", "Questionnaire answer"
    CHAT = "chat", "Chat message"
    QUESTION = "question", "Asked a question"
    POLL = "poll", "Answered a poll"
    REACTION = "reaction", "Reaction"
    DOWNLOAD = "download", "Downloaded content"


class InteractionSource(models.TextChoices):
    LIVE = "live", "Live"
    QUESTIONNAIRE = "questionnaire", "Questionnaire"
    IMPORT = "import", "Import"


class ConnectionStatus(models.TextChoices):
    REQUESTED = "requested", pgettext_lazy("connection", "Requested")
    ACCEPTED = "accepted", pgettext_lazy("connection", "Accepted")
    DECLINED = "declined", pgettext_lazy("connection", "Declined")


class MeetingStatus(models.TextChoices):
    PROPOSED = "proposed", pgettext_lazy("meeting", "Proposed")
    BOOKED = "booked", pgettext_lazy("meeting", "Booked")
    DECLINED = "declined", pgettext_lazy("meeting", "Declined")
    CANCELLED = "cancelled", pgettext_lazy("meeting", "Cancelled")


class ContextKind(models.TextChoices):
    ROOM = "room", "Room"
    CONTENT = "content", "Content"
    INTEREST = "interest", "Interest tag"


# Dwell (seconds) an interaction of a type needs before it counts for training. Rooms: a minute
# removes accidental clicks and people passing through; content: half a minute of watching.
DEFAULT_DWELL_THRESHOLDS = {
    InteractionType.JOIN_ROOM.value: 60,
    InteractionType.VIEW_CONTENT.value: 30,
}

# Relative weight of one interaction of each type in the attendee x context matrix. A chat message
# or a question says more about interest than a passive view; a leave carries no signal by itself.
DEFAULT_INTERACTION_WEIGHTS = {
    InteractionType.JOIN_ROOM.value: 1.0,
    InteractionType.VIEW_CONTENT.value: 1.0,
    InteractionType.QUESTIONNAIRE.value: 0.5,
    InteractionType.CHAT.value: 1.5,
    InteractionType.QUESTION.value: 2.0,
    InteractionType.POLL.value: 0.5,
    InteractionType.REACTION.value: 0.3,
    InteractionType.DOWNLOAD.value: 1.0,
    InteractionType.LEAVE_ROOM.value: 0.0,
}


def default_dwell_thresholds() -> dict:
    return dict(DEFAULT_DWELL_THRESHOLDS)


def default_interaction_weights() -> dict:
    return dict(DEFAULT_INTERACTION_WEIGHTS)
