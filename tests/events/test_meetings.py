"""1:1 meetings: which slots are offered, the whole exchange over the API with the calendar file
parsed back, every refusal with its message, and the two races the database must decide (two
accepts of one slot; two bookings of one person at one time): exactly one wins, the other is a 409."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from events import meetings
from events.enums import MeetingStatus
from events.models import Block, Meeting, MeetingHold, MeetingPlace, MeetingWindow, WebhookDelivery, WebhookEndpoint
from events.services import api_key_create
from tests.factories import AttendeeFactory, EventFactory, RoomFactory


def at(base, minutes):
    return base + timedelta(minutes=minutes)


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


@pytest.fixture
def world(db):
    """An event with meeting hours tomorrow 09:00-11:00 UTC (eight 15-minute slots), one table, and
    five people; the platform's key."""
    base = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    event = EventFactory(slug="summit", name="Summit")
    MeetingWindow.objects.create(event=event, starts_at=base, ends_at=at(base, 120))
    MeetingPlace.objects.create(event=event, name="Table 1")
    people = {
        n: AttendeeFactory(event=event, external_id=n, display_name=n.title())
        for n in ("ada", "bob", "carol", "dave", "erin")
    }
    _, secret = api_key_create(organization=event.organization, name="platform")
    return event, base, people, secret


def api(secret):
    return Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")


def url(who, tail=""):
    return f"/api/v1/events/summit/attendees/{who}/meetings/{tail}"


def book(event, a, b, start):
    meeting = meetings.meeting_propose(requester=a, recipient=b, starts=[start])
    return meetings.meeting_accept(meeting=meeting, by=b, start=start)


def test_free_slots_leave_out_booked_meetings_planned_sessions_and_full_places(world):
    event, base, p, _ = world
    session = RoomFactory(event=event, starts_at=at(base, 20), ends_at=at(base, 40))  # 09:20-09:40
    p["ada"].planned_rooms.add(session)
    book(event, p["ada"], p["carol"], at(base, 60))  # Ada is busy at 10:00
    book(event, p["dave"], p["erin"], at(base, 90))  # the only table is taken at 10:30
    free = meetings.free_slots(event, p["ada"], p["bob"])
    assert free == [at(base, m) for m in (0, 45, 75, 105)]
    # Seen from Bob and Carol: Ada's plans are not theirs; Carol's meeting and the full table are.
    assert at(base, 60) not in meetings.free_slots(event, p["bob"], p["carol"])
    assert at(base, 15) in meetings.free_slots(event, p["bob"], p["carol"])
    assert at(base, 90) not in meetings.free_slots(event, p["bob"], p["carol"])


def test_propose_counter_accept_calendar_and_cancel_over_the_api(world):
    event, base, p, secret = world
    hook = WebhookEndpoint.objects.create(organization=event.organization, url="https://platform.example/hook")
    client = api(secret)
    slots = client.get(url("ada", "slots/"), {"attendee": "bob", "limit": 3}).json()
    assert slots == {"slot_minutes": 15, "slots": [iso(at(base, m)) for m in (0, 15, 30)]}
    proposed = client.post(
        url("ada"),
        {"recipient": "bob", "slots": slots["slots"][:2], "message": "Coffee?"},
        content_type="application/json",
    )
    assert proposed.status_code == 201, proposed.json()
    body = proposed.json()
    assert (body["status"], body["awaiting"], body["slots"], body["calendar_url"]) == (
        "proposed",
        "bob",
        slots["slots"][:2],
        None,
    )
    mid = body["id"]
    # Bob cannot make it then: he proposes 10:00 instead, and now Ada answers.
    countered = client.post(
        url("bob", f"{mid}/propose/"), {"slots": [iso(at(base, 60))]}, content_type="application/json"
    )
    assert (countered.status_code, countered.json()["awaiting"]) == (200, "ada")
    assert (
        client.post(
            url("bob", f"{mid}/accept/"), {"starts_at": iso(at(base, 60))}, content_type="application/json"
        ).status_code
        == 400
    )
    booked = client.post(
        url("ada", f"{mid}/accept/"), {"starts_at": iso(at(base, 60))}, content_type="application/json"
    )
    assert booked.status_code == 200, booked.json()
    body = booked.json()
    assert (body["status"], body["starts_at"], body["ends_at"], body["place"]) == (
        "booked",
        iso(at(base, 60)),
        iso(at(base, 75)),
        {"name": "Table 1", "url": ""},
    )
    assert [m["id"] for m in client.get(url("bob")).json()] == [mid]
    # Both download the same calendar entry, and it parses back.
    files = [client.get(url(who, f"{mid}/calendar.ics")) for who in ("ada", "bob")]
    assert [f["Content-Type"] for f in files] == ["text/calendar; charset=utf-8"] * 2
    assert files[0].content == files[1].content
    [entry] = Calendar.from_ical(files[0].content).walk("VEVENT")
    assert entry.decoded("dtstart") == at(base, 60) and entry.decoded("dtend") == at(base, 75)
    assert str(entry["summary"]) == "Ada and Bob" and str(entry["location"]) == "Table 1"
    assert str(entry["status"]) == "CONFIRMED" and str(entry["uid"]) == f"meeting-{mid}@summit.matchmaking"
    # The platform hears of it.
    delivery = WebhookDelivery.objects.get(endpoint=hook, kind="meeting.booked")
    assert delivery.payload["data"]["meeting"]["starts_at"] == iso(at(base, 60))
    # Either may cancel; the time is free again and the calendar file now removes the entry.
    cancelled = client.post(url("bob", f"{mid}/cancel/"))
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert at(base, 60) in meetings.free_slots(event, p["ada"], p["bob"])
    again = Calendar.from_ical(client.get(url("ada", f"{mid}/calendar.ics")).content)
    assert str(again["method"]) == "CANCEL" and str(again.walk("VEVENT")[0]["status"]) == "CANCELLED"
    assert client.post(url("ada", f"{mid}/cancel/")).status_code == 409


def test_every_refusal_says_what_is_wrong(world):
    event, base, p, secret = world
    client = api(secret)

    def propose(who, to, *slots):
        return client.post(url(who), {"recipient": to, "slots": list(slots)}, content_type="application/json")

    off_grid = propose("ada", "bob", iso(at(base, 7)), iso(at(base, 15)))
    assert off_grid.status_code == 400
    assert off_grid.json() == {"slots": [meetings.NOT_A_SLOT.format(at=at(base, 7).isoformat())]}
    book(event, p["bob"], p["carol"], at(base, 30))
    busy = propose("ada", "bob", iso(at(base, 30)))
    assert busy.json() == {"slots": [meetings.NOT_FREE.format(at=at(base, 30).isoformat())]}
    assert propose("ada", "ada", iso(at(base, 0))).json() == {"recipient": [meetings.WITH_ONESELF]}
    naive = propose("ada", "bob", at(base, 0).replace(tzinfo=None).isoformat())
    assert naive.status_code == 400 and "offset" in str(naive.json())
    Block.objects.create(event=event, blocker=p["erin"], blocked=p["ada"])
    assert propose("ada", "erin", iso(at(base, 0))).json() == {"recipient": [meetings.BLOCKED]}
    p["dave"].consent_be_recommended = False
    p["dave"].save()
    assert propose("ada", "dave", iso(at(base, 0))).json() == {"recipient": [meetings.NOT_SUGGESTIBLE]}

    first = propose("ada", "bob", iso(at(base, 0))).json()
    second = propose("bob", "ada", iso(at(base, 15)))
    assert second.json() == {"recipient": [meetings.ALREADY_OPEN.format(id=first["id"])]}
    mid = first["id"]
    assert client.post(
        url("ada", f"{mid}/accept/"), {"starts_at": iso(at(base, 0))}, content_type="application/json"
    ).json() == {"detail": [meetings.NOT_YOURS_TO_ANSWER]}
    not_proposed = client.post(
        url("bob", f"{mid}/accept/"), {"starts_at": iso(at(base, 45))}, content_type="application/json"
    )
    assert not_proposed.json() == {"starts_at": [meetings.NOT_AMONG_PROPOSED.format(at=at(base, 45).isoformat())]}
    assert client.post(url("bob", f"{mid}/decline/")).json()["status"] == "declined"
    late = client.post(url("bob", f"{mid}/accept/"), {"starts_at": iso(at(base, 0))}, content_type="application/json")
    assert (late.status_code, late.json()) == (409, {"detail": meetings.NOT_PROPOSED.format(status="declined")})
    assert client.get(url("carol", f"{mid}/calendar.ics")).status_code == 404  # not Carol's meeting
    assert client.get(url("ada", f"{mid}/calendar.ics")).status_code == 404  # never booked
    _, theirs = api_key_create(organization=EventFactory().organization, name="theirs")
    assert api(theirs).get(url("ada")).status_code == 404


def _at_once(*calls):
    """Run the calls in threads released together; their responses, in call order."""
    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            out[i] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.fixture
def race(transactional_db):
    base = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    event = EventFactory(slug="summit")
    MeetingWindow.objects.create(event=event, starts_at=base, ends_at=at(base, 60))
    people = {n: AttendeeFactory(event=event, external_id=n) for n in ("ada", "bob", "carol")}
    _, secret = api_key_create(organization=event.organization, name="platform")
    return event, base, people, secret


def test_two_accepts_of_one_slot_at_the_same_instant_book_it_once(race):
    _event, base, p, secret = race
    meeting = meetings.meeting_propose(requester=p["ada"], recipient=p["bob"], starts=[base])
    accept = url("bob", f"{meeting.pk}/accept/")
    answers = _at_once(
        *[lambda: api(secret).post(accept, {"starts_at": iso(base)}, content_type="application/json")] * 2
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json() == {"detail": meetings.NOT_PROPOSED.format(status="booked")}
    assert MeetingHold.objects.filter(attendee=p["ada"], starts_at=base).count() == 1


def test_two_bookings_of_one_person_at_one_time_let_exactly_one_win(race):
    _event, base, p, secret = race
    with_bob = meetings.meeting_propose(requester=p["ada"], recipient=p["bob"], starts=[base])
    with_carol = meetings.meeting_propose(requester=p["ada"], recipient=p["carol"], starts=[base])
    answers = _at_once(
        lambda: api(secret).post(
            url("bob", f"{with_bob.pk}/accept/"), {"starts_at": iso(base)}, content_type="application/json"
        ),
        lambda: api(secret).post(
            url("carol", f"{with_carol.pk}/accept/"), {"starts_at": iso(base)}, content_type="application/json"
        ),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["detail"] in (meetings.TAKEN, meetings.NOT_FREE.format(at=base.isoformat()))
    assert Meeting.objects.filter(status=MeetingStatus.BOOKED).count() == 1
    assert MeetingHold.objects.filter(attendee=p["ada"], starts_at=base).count() == 1


def _accept_while_the_first_is_uncommitted(first, second) -> dict:
    """Accept `first` (meeting, by, start) in a transaction that stays open for a second while
    `second` is accepted on another connection: the second passes every check (nothing committed
    yet) and only the database can stop it. {"second": "booked"} or the second's 409 message."""
    written, outcome = threading.Event(), {}

    def run_first():
        meeting, by, start = first
        try:
            with transaction.atomic():
                meetings.meeting_accept(meeting=meeting, by=by, start=start)
                written.set()
                time.sleep(1.0)  # the second one reads now, then waits on the database until this commits
        finally:
            connection.close()

    def run_second():
        meeting, by, start = second
        written.wait(10)
        try:
            meetings.meeting_accept(meeting=meeting, by=by, start=start)
            outcome["second"] = "booked"
        except meetings.MeetingConflict as exc:
            outcome["second"] = str(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


def test_the_database_refuses_the_second_booking_that_passed_every_check_before_the_first_committed(race):
    """The interleaving the checks cannot see: the second booking reads before the first commits,
    so only the unique constraint on holds stands between them, and it holds."""
    _event, base, p, _ = race
    with_bob = meetings.meeting_propose(requester=p["ada"], recipient=p["bob"], starts=[base])
    with_carol = meetings.meeting_propose(requester=p["ada"], recipient=p["carol"], starts=[base])
    outcome = _accept_while_the_first_is_uncommitted((with_bob, p["bob"], base), (with_carol, p["carol"], base))
    assert outcome == {"second": meetings.TAKEN}
    assert list(Meeting.objects.filter(status=MeetingStatus.BOOKED).values_list("pk", flat=True)) == [with_bob.pk]
    with_carol.refresh_from_db()
    assert with_carol.status == MeetingStatus.PROPOSED  # still open: Carol can pick another time


def test_check_in_opens_before_the_start_and_both_make_a_meeting_held_which_the_funnel_counts(world):
    from recommendations.models import FunnelEvent

    event, base, p, secret = world
    # Bob was shown Ada by the rules engine; Ada proposes the meeting: it still counts for that showing.
    FunnelEvent.objects.create(event=event, viewer=p["bob"], suggested=p["ada"], stage="shown", source="rules")
    meeting = book(event, p["ada"], p["bob"], at(base, 30))
    assert list(FunnelEvent.objects.filter(stage="booked").values_list("source", "viewer__external_id")) == [
        ("rules", "bob")
    ]
    with pytest.raises(ValidationError, match="opens 10 minutes before"):
        meetings.meeting_check_in(meeting=meeting, by=p["ada"], now=at(base, 19))
    meetings.meeting_check_in(meeting=meeting, by=p["ada"], now=at(base, 21))
    meetings.meeting_check_in(meeting=meeting, by=p["ada"], now=at(base, 22))  # twice: nothing more
    meeting.refresh_from_db()
    assert (meeting.requester_checked_in_at, meeting.held_at) == (at(base, 21), None)
    assert not FunnelEvent.objects.filter(stage="held").exists()
    meetings.meeting_check_in(meeting=meeting, by=p["bob"], now=at(base, 31))
    meeting.refresh_from_db()
    assert meeting.held_at == at(base, 31)
    assert FunnelEvent.objects.filter(stage="held", source="rules").count() == 1
    with pytest.raises(ValidationError, match="over"):
        meetings.meeting_check_in(
            meeting=book(event, p["carol"], p["dave"], at(base, 60)), by=p["dave"], now=at(base, 76)
        )
    # Over the API: the check-in window is checked against the real clock (tomorrow is too early).
    other = book(event, p["carol"], p["erin"], at(base, 0))
    early = api(secret).post(url("erin", f"{other.pk}/check-in/"))
    assert (early.status_code, early.json()) == (400, {"detail": [meetings.TOO_EARLY.format(minutes=10)]})
    cancelled = meetings.meeting_cancel(meeting=other, by=p["erin"])
    late = api(secret).post(url("erin", f"{cancelled.pk}/check-in/"))
    assert (late.status_code, late.json()) == (409, {"detail": meetings.NOT_BOOKED.format(status="cancelled")})


def test_overlapping_hours_or_a_changed_slot_length_never_offer_or_book_an_overlapping_time(world):
    """Slots that overlap a booked meeting without starting with it are busy too: found by a
    property test (tests/trust/test_meeting_message_properties.py), where a second window five
    minutes after the first let one person be booked at 09:00 and at 09:05."""
    event, base, p, _ = world
    MeetingWindow.objects.create(event=event, starts_at=at(base, 5), ends_at=at(base, 65))
    grid = meetings.slot_grid(event)
    assert grid == sorted(set(grid)) and at(base, 5) in grid  # one ordered grid of both windows
    book(event, p["ada"], p["carol"], base)  # 09:00-09:15
    free = meetings.free_slots(event, p["ada"], p["bob"])
    assert base not in free and at(base, 5) not in free and at(base, 15) in free
    with pytest.raises(ValidationError) as refused:
        meetings.meeting_propose(requester=p["bob"], recipient=p["ada"], starts=[at(base, 5)])
    assert refused.value.message_dict == {"slots": [meetings.NOT_FREE.format(at=at(base, 5).isoformat())]}
    # The organizers lengthen the slots after bookings: 09:20-09:40 would overlap Dave's 09:15-09:30.
    MeetingWindow.objects.filter(event=event).exclude(starts_at=base).delete()
    book(event, p["dave"], p["erin"], at(base, 15))
    event.meeting_slot_minutes = 20
    event.save(update_fields=["meeting_slot_minutes"])
    assert at(base, 20) in meetings.slot_grid(event)
    assert at(base, 20) not in meetings.free_slots(event, p["dave"], p["bob"])
    assert at(base, 40) in meetings.free_slots(event, p["dave"], p["bob"])


def test_the_database_refuses_an_overlapping_booking_at_another_start_that_passed_every_check(race):
    """The interleaving again, with starts five minutes apart (overlapping windows): equal starts
    are not the same slot, and on PostgreSQL the exclusion constraint over the holds' time refuses it."""
    if connection.vendor != "postgresql":
        pytest.skip("the exclusion constraint is PostgreSQL's; SQLite runs one writer at a time")
    event, base, p, _ = race
    MeetingWindow.objects.create(event=event, starts_at=at(base, 5), ends_at=at(base, 65))
    with_bob = meetings.meeting_propose(requester=p["ada"], recipient=p["bob"], starts=[base])
    with_carol = meetings.meeting_propose(requester=p["ada"], recipient=p["carol"], starts=[at(base, 5)])
    outcome = _accept_while_the_first_is_uncommitted((with_bob, p["bob"], base), (with_carol, p["carol"], at(base, 5)))
    assert outcome == {"second": meetings.TAKEN}
    assert list(MeetingHold.objects.filter(attendee=p["ada"]).values_list("starts_at", "ends_at")) == [
        (base, at(base, 15))
    ]
