import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection as db_connection

from events import services
from events.enums import ConnectionStatus
from events.models import Connection
from tests.factories import AttendeeFactory, InterestTagFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("type_", "value", "qualifies"),
    [
        ("join_room", 59.9, False),
        ("join_room", 60.0, True),
        ("join_room", None, False),
        ("view_content", 29.0, False),
        ("view_content", 30.0, True),
        ("chat", None, True),
    ],
)
def test_interaction_qualifies_against_event_threshold(type_, value, qualifies):
    event = AttendeeFactory().event
    assert services.interaction_qualifies(event=event, type=type_, value=value) is qualifies


def test_attendee_set_tags_other_event_rejected():
    attendee = AttendeeFactory()
    own = InterestTagFactory(event=attendee.event)
    foreign = InterestTagFactory()
    with pytest.raises(ValidationError) as exc:
        services.attendee_set_tags(attendee=attendee, interests=[own, foreign])
    assert list(exc.value.message_dict) == ["interests"]
    assert list(attendee.interests.all()) == []


def test_connection_request_across_events_rejected():
    a = AttendeeFactory()
    b = AttendeeFactory()
    with pytest.raises(ValidationError) as exc:
        services.connection_request(requester=a, recipient=b)
    assert list(exc.value.message_dict) == ["other"]
    assert Connection.objects.count() == 0


def test_connection_request_reverse_existing_reports_status():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    services.connection_request(requester=a, recipient=b)
    with pytest.raises(ValidationError) as exc:
        services.connection_request(requester=b, recipient=a)
    assert exc.value.messages == [services.CONNECTION_EXISTS.format(status="requested")]


def test_connection_request_blocked_rejected():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    services.block_create(blocker=b, blocked=a)
    with pytest.raises(ValidationError) as exc:
        services.connection_request(requester=a, recipient=b)
    assert exc.value.messages == [services.BLOCKED]


def test_connection_respond_only_recipient():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    conn = services.connection_request(requester=a, recipient=b)
    with pytest.raises(ValidationError) as exc:
        services.connection_respond(connection=conn, responder=a, accept=True)
    assert exc.value.messages == [services.CONNECTION_NOT_RECIPIENT]
    conn = services.connection_respond(connection=conn, responder=b, accept=True)
    assert conn.status == ConnectionStatus.ACCEPTED


@pytest.mark.django_db(transaction=True)
def test_connection_respond_concurrent_accepts_one_wins():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    conn = services.connection_request(requester=a, recipient=b)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def answer(accept: bool):
        barrier.wait()
        try:
            services.connection_respond(connection=conn, responder=b, accept=accept)
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(exc.messages[0])
        finally:
            db_connection.close()

    threads = [threading.Thread(target=answer, args=(flag,)) for flag in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.refresh_from_db()
    assert outcomes.count("ok") == 1
    assert [o for o in outcomes if o != "ok"] == [services.CONNECTION_NOT_PENDING.format(status=conn.status)]


def test_block_and_not_relevant_across_events_rejected():
    a = AttendeeFactory()
    b = AttendeeFactory()
    with pytest.raises(ValidationError):
        services.block_create(blocker=a, blocked=b)
    with pytest.raises(ValidationError):
        services.not_relevant_create(attendee=a, target=b)


def test_block_self_rejected_with_message():
    a = AttendeeFactory()
    with pytest.raises(ValidationError) as exc:
        services.block_create(blocker=a, blocked=a)
    assert exc.value.messages == [services.SELF_LINK.format(verb="block")]


def test_block_create_twice_is_idempotent():
    a = AttendeeFactory()
    b = AttendeeFactory(event=a.event)
    first = services.block_create(blocker=a, blocked=b)
    second = services.block_create(blocker=a, blocked=b)
    assert first.pk == second.pk


def test_api_key_hash_stored_not_secret():
    from tests.factories import OrganizationFactory

    key, secret = services.api_key_create(organization=OrganizationFactory(), name="platform")
    assert secret.startswith(f"mm_{key.prefix}_")
    assert secret not in key.hashed_key
    assert key.hashed_key == services.hash_api_key(secret)


@pytest.mark.django_db(transaction=True)
def test_login_link_redeemed_concurrently_signs_in_exactly_once():
    attendee = AttendeeFactory()
    _, token = services.login_link_issue(attendee=attendee, minutes=5)
    barrier = threading.Barrier(4)
    winners: list = []

    def redeem():
        barrier.wait()
        try:
            winners.append(services.login_link_redeem(event_slug=attendee.event.slug, token=token))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [w.pk for w in winners if w is not None] == [attendee.pk]
    assert winners.count(None) == 3
