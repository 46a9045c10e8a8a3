"""Email: meeting requests and bookings (with the calendar file), the daily people-to-meet digest,
who gets what (address, kind wanted, consent, after commit only), the one-click unsubscribe, and
the task retrying against a real SMTP server that turns the first attempt away."""

import socket
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.db import transaction
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from events import meetings, notifications
from events.models import Attendee, MeetingWindow
from events.tasks import send_meeting_email
from recommendations.digest import digest_mail, digest_recipients
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory, LiveEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    base = (timezone.now() + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    event = EventFactory(slug="summit", name="Summit", timezone="Europe/Paris")
    MeetingWindow.objects.create(event=event, starts_at=base, ends_at=base + timedelta(hours=1))
    ada = AttendeeFactory(event=event, external_id="ada", display_name="Ada", email="ada@example.org")
    bob = AttendeeFactory(event=event, external_id="bob", display_name="Bob", email="bob@example.org")
    return event, base, ada, bob


def test_a_request_mails_the_one_asked_and_a_booking_mails_both_with_the_calendar_file(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    _event, base, ada, bob = world
    with django_capture_on_commit_callbacks(execute=True):
        meeting = meetings.meeting_propose(requester=ada, recipient=bob, starts=[base], message="Coffee?")
    [asked] = mailoutbox
    assert (asked.to, asked.subject) == (["bob@example.org"], "Ada would like to meet you")
    assert "\u201cCoffee?\u201d" in asked.body and f"{base:%a %d %b}, 09:00" in asked.body  # Paris time
    link = asked.extra_headers["List-Unsubscribe"].strip("<>")
    assert asked.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and link in asked.body
    with django_capture_on_commit_callbacks(execute=True):
        meetings.meeting_accept(meeting=meeting, by=bob, start=base)
    booked = mailoutbox[1:]
    assert sorted(m.to[0] for m in booked) == ["ada@example.org", "bob@example.org"]
    for message in booked:
        [(name, content, mimetype)] = message.attachments
        assert (name, mimetype) == (f"meeting-{meeting.pk}.ics", "text/calendar")
        assert Calendar.from_ical(content).walk("VEVENT")[0].decoded("dtstart") == base


def test_nobody_is_mailed_without_an_address_against_their_choice_or_for_a_rolled_back_request(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    event, base, ada, bob = world

    class Undo(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Undo), transaction.atomic():
        meetings.meeting_propose(requester=ada, recipient=bob, starts=[base])
        raise Undo
    assert mailoutbox == []
    Attendee.objects.filter(pk=bob.pk).update(email_meetings=False)
    with django_capture_on_commit_callbacks(execute=True):
        meetings.meeting_propose(requester=ada, recipient=bob, starts=[base])
    nobody = AttendeeFactory(event=event, email="")
    with django_capture_on_commit_callbacks(execute=True):
        meetings.meeting_propose(requester=ada, recipient=nobody, starts=[base])
    assert mailoutbox == []


def test_one_click_unsubscribe_and_the_page_that_asks_first(world):
    _event, _base, ada, _bob = world
    path = notifications.unsubscribe_url(attendee=ada, kind=notifications.MEETINGS).split("8000", 1)[1]
    client = Client(enforce_csrf_checks=True)
    page = client.get(path)
    assert page.status_code == 200 and "Stop these emails" in page.content.decode()
    ada.refresh_from_db()
    assert ada.email_meetings is True  # opening the link (or a mail scanner fetching it) changes nothing
    one_click = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and "will not get emails about meeting" in one_click.content.decode()
    ada.refresh_from_db()
    assert (ada.email_meetings, ada.email_digest) == (False, True)  # that kind only
    assert client.get(path[:-5] + "xxxx/").status_code == 404


def test_the_digest_lists_people_to_meet_with_their_reasons_to_those_who_get_suggestions(mailoutbox):
    event = LiveEventFactory(slug="live", name="Live Summit")
    tag = InterestTagFactory(event=event, label="Postgres")
    ada = AttendeeFactory(event=event, display_name="Ada", email="ada@example.org")
    bob = AttendeeFactory(event=event, display_name="Bob", headline="DBA", email="bob@example.org")
    quiet = AttendeeFactory(event=event, email="quiet@example.org", consent_receive_recommendations=False)
    AttendeeFactory(event=event, email="")
    AttendeeFactory(event=EventFactory(slug="past"), email="old@example.org")  # no live window: no digest
    for person in (ada, bob):
        person.interests.add(tag)
    assert set(digest_recipients()) == {ada.pk, bob.pk}
    message = digest_mail(attendee_id=ada.pk)
    assert message.subject == "People to meet at Live Summit"
    assert "  - Bob, DBA: " in message.body and "Postgres" in message.body
    assert "digest" not in message.extra_headers["List-Unsubscribe"]  # the kind is inside the signed token
    assert digest_mail(attendee_id=quiet.pk) is None
    notifications.unsubscribe(attendee=ada, kind=notifications.DIGEST)
    assert digest_mail(attendee_id=ada.pk) is None


class Flaky:
    """An SMTP server's handler that turns the first delivery away (451: try again later)."""

    def __init__(self):
        self.attempts = 0
        self.delivered = []

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.attempts == 1:
            return "451 Requested action aborted: try again later"
        self.delivered.append(envelope)
        return "250 OK"


def test_the_mail_task_retries_when_the_server_turns_it_away(world, settings, django_capture_on_commit_callbacks):
    _event, base, ada, bob = world
    handler = Flaky()
    with socket.socket() as probe:  # a free port for the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        meeting = meetings.meeting_propose(requester=ada, recipient=bob, starts=[base])
        # The task as Celery runs it (eagerly here: a retry runs at once instead of after its wait).
        result = send_meeting_email.apply(
            kwargs={"meeting_id": meeting.pk, "attendee_id": bob.pk, "what": notifications.MEETING_REQUEST},
            throw=False,
        )
    finally:
        server.stop()
    assert (handler.attempts, result.state, result.result) == (2, "SUCCESS", True)
    [envelope] = handler.delivered
    assert envelope.rcpt_tos == ["bob@example.org"] and b"Ada would like to meet you" in envelope.content
    assert send_meeting_email.max_retries == 6 and send_meeting_email.retry_backoff == 30


def test_a_booking_stands_when_the_broker_is_down_and_the_lost_mail_is_logged(
    world, mailoutbox, caplog, django_capture_on_commit_callbacks
):
    from matchmaking_site.celery import app as celery_app

    _event, base, ada, bob = world
    with socket.socket() as probe:  # a port where no broker listens
        probe.bind(("127.0.0.1", 0))
        closed = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    original, eager = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app.conf.update(broker_url=closed, task_always_eager=False)
    celery_app._pool, celery_app.amqp._producer_pool = None, None  # drop the cached connections
    try:
        with caplog.at_level("WARNING", logger="events.notifications"):
            with django_capture_on_commit_callbacks(execute=True):
                meeting = meetings.meeting_propose(requester=ada, recipient=bob, starts=[base])
            with django_capture_on_commit_callbacks(execute=True):
                meetings.meeting_accept(meeting=meeting, by=bob, start=base)
    finally:
        celery_app.conf.update(broker_url=original, task_always_eager=eager)
        celery_app._pool, celery_app.amqp._producer_pool = None, None
    meeting.refresh_from_db()
    assert meeting.status == "booked" and mailoutbox == []
    lost = [r.getMessage() for r in caplog.records if r.name == "events.notifications"]
    assert lost == [
        f"Could not enqueue meeting_request mail for meeting {meeting.pk}.",
        f"Could not enqueue meeting_booked mail for meeting {meeting.pk}.",
        f"Could not enqueue meeting_booked mail for meeting {meeting.pk}.",
    ]
