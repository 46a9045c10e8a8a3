"""Property-based tenancy and consent for the newer tables: meetings, messages, webhooks and the
platform's bulk upserts. Whatever happens among the people of several events of two organizations,
nothing leaks across events, nobody is held twice at once, consents are honoured, and the answers
agree with a plain model of what should have happened. Everything goes through the public API with
an organization's key (as a platform would call it), except the world set up before each example."""

from collections import deque
from datetime import datetime, timedelta

from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from events import meetings, services, webhooks
from events.enums import ConnectionStatus
from events.models import (
    Attendee,
    Connection,
    Interaction,
    InterestTag,
    Meeting,
    MeetingHold,
    MeetingPlace,
    MeetingSlot,
    MeetingWindow,
    Message,
    Room,
    WebhookDelivery,
    WebhookEndpoint,
)
from recommendations.backends.rules import forget_rules_indexes
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory, RoomFactory

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def key_client(organization) -> Client:
    _, secret = services.api_key_create(organization=organization, name="platform")
    return Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def attendee_url(attendee, tail=""):
    return f"/api/v1/events/{attendee.event.slug}/attendees/{attendee.external_id}/{tail}"


def tomorrow_nine():
    return (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


# --- Meetings --------------------------------------------------------------------------------------

# Three events: 0 and 1 of one organization, 2 of another. Each has its own meeting hours, places,
# slot length and people; every action is drawn against one of them.
N_EVENTS = 3
ACTORS = ["awaiting"] * 6 + ["proposer", "requester", "recipient", "third", "outsider"]
KEYS = ["own"] * 7 + ["foreign"]
EVENT_PICK = st.sampled_from([0, 0, 0, 0, 0, 1, 2])  # most of the traffic in one event, so that people collide

windows_st = st.lists(
    # (offset from 09:00 in 5-minute steps, length in slots, 0-2 extra 5-minute steps): windows may
    # overlap, and their slots need not line up: the organizer's admin allows any windows.
    st.tuples(st.integers(0, 24), st.integers(1, 6), st.integers(0, 2)),
    min_size=1,
    max_size=3,
)
event_setup_st = st.fixed_dictionaries(
    {
        "n": st.integers(2, 4),
        "slot_minutes": st.sampled_from([15, 20, 30]),
        "windows": windows_st,
        "places": st.integers(0, 2),
        "be_recommended": st.lists(st.sampled_from([True, True, True, False]), min_size=4, max_size=4),
        "connected": st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=3),
    }
)
slot_picks = st.lists(st.integers(0, 40), min_size=1, max_size=3)  # 2 or 3: accepted at once
meeting_id_pick = st.integers(0, 20)  # among all meetings so far, oldest first, modulo their number
propose_st = st.tuples(
    st.just("propose"),
    EVENT_PICK,
    st.integers(0, 3),
    st.sampled_from([1, 1, 2, 3, 0]),  # the recipient: that many places after the requester (0: oneself)
    slot_picks,
    st.sampled_from([False] * 5 + [True]),  # one slot off the grid (5 minutes late)
    st.sampled_from(KEYS),
)
accept_st = st.tuples(
    st.just("accept"),
    EVENT_PICK,
    meeting_id_pick,
    st.sampled_from(ACTORS),
    st.integers(0, 40),
    st.sampled_from([True] * 5 + [False]),  # one of the proposed slots, or any slot
    st.sampled_from(KEYS),
)


NO_SLOTS = st.just(0)


def answer_st(kind, slots=NO_SLOTS):
    return st.tuples(
        st.just(kind),
        EVENT_PICK,
        meeting_id_pick,
        st.sampled_from(ACTORS),
        slots,
        st.just(False),
        st.sampled_from(KEYS),
    )


# Proposals and accepts twice as often as the rest: bookings are what can collide.
meeting_ops_st = st.lists(
    st.one_of(
        propose_st,
        propose_st,
        accept_st,
        accept_st,
        answer_st("counter", slot_picks),
        answer_st("decline"),
        answer_st("cancel"),
    ),
    min_size=8,
    max_size=30,
)


class MeetingModel:
    """What should be true of one event's meetings, kept from the answers the API gave."""

    def __init__(self, event, people, places, base, setup):
        self.event, self.people, self.places = event, people, places  # places sorted by name
        self.length = timedelta(minutes=setup["slot_minutes"])
        grid: set[datetime] = set()
        for offset, slots, extra in setup["windows"]:
            starts = base + timedelta(minutes=5 * offset)
            ends = starts + slots * self.length + timedelta(minutes=5 * extra)
            at = starts
            while at + self.length <= ends:
                grid.add(at)
                at += self.length
        self.grid = sorted(grid)
        self.meetings: dict[int, dict] = {}  # id -> requester, recipient, proposed_by, status, slots, start, place
        self.connected: set[frozenset] = set()

    def booked(self):
        return [m for m in self.meetings.values() if m["status"] == "booked"]

    def overlaps(self, a: datetime, b: datetime) -> bool:
        return a < b + self.length and b < a + self.length

    def person_free(self, person, at) -> bool:
        return not any(
            person in (m["requester"], m["recipient"]) and self.overlaps(m["start"], at) for m in self.booked()
        )

    def free_place(self, at):
        """The place a booking at `at` gets: the first by name no booked meeting holds then."""
        for place in self.places:
            if not any(m["place"] == place.name and self.overlaps(m["start"], at) for m in self.booked()):
                return place.name
        return None

    def slot_free(self, a, b, at) -> bool:
        if at not in self.grid or not self.person_free(a, at) or not self.person_free(b, at):
            return False
        return not self.places or self.free_place(at) is not None

    def open_between(self, a, b) -> bool:
        return any(
            m["status"] == "proposed" and {m["requester"], m["recipient"]} == {a, b} for m in self.meetings.values()
        )


def meeting_snapshot():
    return (
        set(Meeting.objects.values_list("pk", "status", "proposed_by_id", "starts_at", "place_id")),
        set(MeetingHold.objects.values_list("meeting_id", "attendee_id", "place_id", "starts_at")),
        set(MeetingSlot.objects.values_list("meeting_id", "starts_at")),
    )


class MeetingPropertyTests(TestCase):
    """Whatever meetings are proposed, countered, accepted, declined and cancelled among the people
    of three events of two organizations (including requests the services refuse, and requests with
    the other organization's key or by someone of another event), every answer is what a plain
    model says; each attendee's list holds exactly the meetings they are a party to, of their
    event; another organization's key gets 404 everywhere; no person and no place is ever held at
    two overlapping times; holds and proposed slots match the meetings exactly."""

    @settings(max_examples=30, **SETTINGS)
    @given(setups=st.lists(event_setup_st, min_size=N_EVENTS, max_size=N_EVENTS), ops=meeting_ops_st)
    # Two windows whose slots do not line up (09:00-10:00 and 09:05-10:05): p0 meets p1 at 09:00,
    # then p2 proposes 09:05 to p0, which overlaps it.
    @example(
        setups=[
            {
                "n": 3,
                "slot_minutes": 15,
                "windows": [(0, 4, 0), (1, 4, 0)],
                "places": 0,
                "be_recommended": [True] * 4,
                "connected": [],
            }
        ]
        + [
            {
                "n": 2,
                "slot_minutes": 15,
                "windows": [(0, 1, 0)],
                "places": 0,
                "be_recommended": [True] * 4,
                "connected": [],
            }
        ]
        * 2,
        ops=[("propose", 0, 0, 1, [0, 0], False, "own"), ("propose", 0, 2, 1, [1], False, "own")],
    )
    def test_meetings_stay_in_their_event_and_never_double_book(self, setups, ops):
        cache.clear()
        base = tomorrow_nine()
        first = EventFactory()
        events = [first, EventFactory(organization=first.organization), EventFactory()]
        clients = {e.organization_id: key_client(e.organization) for e in (events[0], events[2])}
        foreign = {events[0].organization_id: clients[events[2].organization_id]}
        foreign[events[2].organization_id] = clients[events[0].organization_id]
        models = []
        for event, setup in zip(events, setups, strict=True):
            event.meeting_slot_minutes = setup["slot_minutes"]
            event.save(update_fields=["meeting_slot_minutes"])
            length = timedelta(minutes=setup["slot_minutes"])
            for offset, slots, extra in setup["windows"]:
                starts = base + timedelta(minutes=5 * offset)
                MeetingWindow.objects.create(
                    event=event, starts_at=starts, ends_at=starts + slots * length + timedelta(minutes=5 * extra)
                )
            places = [MeetingPlace.objects.create(event=event, name=f"Table {k}") for k in range(setup["places"])]
            # The same external ids in every event: only the event in the URL tells them apart.
            people = [AttendeeFactory(event=event, external_id=f"p{i}") for i in range(setup["n"])]
            for person, flag in zip(people, setup["be_recommended"], strict=False):
                Attendee.objects.filter(pk=person.pk).update(consent_be_recommended=flag)
                person.consent_be_recommended = flag
            model = MeetingModel(event, people, places, base, setup)
            for i, j in setup["connected"]:
                a, b = people[i % len(people)], people[j % len(people)]
                if a != b and frozenset((a.pk, b.pk)) not in model.connected:
                    Connection.objects.create(event=event, requester=a, recipient=b, status=ConnectionStatus.ACCEPTED)
                    model.connected.add(frozenset((a.pk, b.pk)))
            assert sorted(set(meetings.slot_grid(event))) == model.grid
            models.append(model)

        queue = deque(ops)
        while queue:
            op = queue.popleft()
            kind, ev, x, y, picks, flag, key = op
            model, event = models[ev], events[ev]
            people = model.people
            length = model.length
            if kind == "propose":
                a, b = people[x % len(people)], people[(x + y) % len(people)]
                starts = [model.grid[k % len(model.grid)] for k in picks]
                if flag:
                    starts[0] += timedelta(minutes=5)
                body = {"recipient": b.external_id, "slots": [iso(s) for s in starts]}
                if key == "foreign":
                    before = meeting_snapshot()
                    answer = foreign[event.organization_id].post(
                        attendee_url(a, "meetings/"), body, content_type="application/json"
                    )
                    assert answer.status_code == 404, answer.content
                    assert meeting_snapshot() == before
                    continue
                answer = clients[event.organization_id].post(
                    attendee_url(a, "meetings/"), body, content_type="application/json"
                )
                consents = b.consent_be_recommended or frozenset((a.pk, b.pk)) in model.connected
                ok = (
                    a != b
                    and consents
                    and not model.open_between(a.pk, b.pk)
                    and all(model.slot_free(a.pk, b.pk, s) for s in starts)
                )
                tally(f"propose {answer.status_code}")
                taken = [s.isoformat() for s in starts if not model.slot_free(a.pk, b.pk, s)]
                assert answer.status_code == (201 if ok else 400), (
                    op,
                    f"not free or not a slot: {taken}",
                    answer.content,
                )
                if not consents and a != b:
                    assert answer.json() == {"recipient": [meetings.NOT_SUGGESTIBLE]}
                if ok:
                    got = answer.json()
                    assert (got["requester"], got["recipient"], got["status"]) == (
                        a.external_id,
                        b.external_id,
                        "proposed",
                    )
                    assert {parse(s) for s in got["slots"]} == set(starts)
                    model.meetings[got["id"]] = {
                        "requester": a.pk,
                        "recipient": b.pk,
                        "proposed_by": a.pk,
                        "status": "proposed",
                        "slots": set(starts),
                        "start": None,
                        "place": None,
                    }
                    if len(picks) > 1:  # answered at once: the recipient accepts one of the slots
                        n_meetings = sum(len(each.meetings) for each in models)
                        queue.appendleft(("accept", ev, n_meetings - 1, "awaiting", picks[-1], True, "own"))
                continue

            # An answer: to one of all the meetings so far, in whichever event it is.
            everyone = sorted((mid, k) for k, each in enumerate(models) for mid in each.meetings)
            if not everyone:
                continue
            mid, ev = everyone[x % len(everyone)]
            model, event = models[ev], events[ev]
            people, length = model.people, model.length
            m = model.meetings[mid]
            requester = next(p for p in people if p.pk == m["requester"])
            recipient = next(p for p in people if p.pk == m["recipient"])
            awaiting = recipient if m["proposed_by"] == requester.pk else requester
            proposer = requester if awaiting is recipient else recipient
            thirds = [p for p in people if p.pk not in (requester.pk, recipient.pk)]
            actor = {
                "awaiting": awaiting,
                "proposer": proposer,
                "requester": requester,
                "recipient": recipient,
                "third": thirds[0] if thirds else None,
            }.get(y)
            client = clients[event.organization_id]
            if actor is None:  # someone of another event, with the key of their own organization
                other = models[(ev + 1) % N_EVENTS]
                actor = other.people[0]
                client = clients[other.event.organization_id]
            if key == "foreign":
                client = foreign[actor.event.organization_id]
            party = actor.pk in (requester.pk, recipient.pk)
            url = attendee_url(actor, f"meetings/{mid}/")
            before = meeting_snapshot()

            if kind == "accept":
                if flag and m["slots"]:
                    start = sorted(m["slots"])[picks % len(m["slots"])]
                else:
                    start = model.grid[picks % len(model.grid)]
                answer = client.post(url + "accept/", {"starts_at": iso(start)}, content_type="application/json")
                if key == "foreign" or not party:
                    expected = 404
                elif m["status"] != "proposed":
                    expected = 409
                elif actor.pk == m["proposed_by"] or start not in m["slots"]:
                    expected = 400
                elif (
                    not model.person_free(requester.pk, start)
                    or not model.person_free(recipient.pk, start)
                    or (model.places and model.free_place(start) is None)
                ):
                    expected = 409
                else:
                    expected = 200
                tally(f"accept {answer.status_code}")
                assert answer.status_code == expected, (op, expected, answer.content)
                if expected == 200:
                    got = answer.json()
                    place = model.free_place(start) if model.places else None
                    assert (got["status"], parse(got["starts_at"]), parse(got["ends_at"])) == (
                        "booked",
                        start,
                        start + length,
                    )
                    assert (got["place"] or {}).get("name") == place
                    m.update(status="booked", start=start, place=place, slots=set())
            elif kind == "counter":
                starts = [model.grid[k % len(model.grid)] for k in picks]
                answer = client.post(
                    url + "propose/", {"slots": [iso(s) for s in starts]}, content_type="application/json"
                )
                if key == "foreign" or not party:
                    expected = 404
                elif m["status"] != "proposed":
                    expected = 409
                elif actor.pk == m["proposed_by"] or not all(
                    model.slot_free(requester.pk, recipient.pk, s) for s in starts
                ):
                    expected = 400
                else:
                    expected = 200
                assert answer.status_code == expected, (op, expected, answer.content)
                if expected == 200:
                    assert answer.json()["awaiting"] == proposer.external_id
                    m.update(proposed_by=actor.pk, slots=set(starts))
            elif kind == "decline":
                answer = client.post(url + "decline/")
                if key == "foreign" or not party:
                    expected = 404
                elif m["status"] != "proposed":
                    expected = 409
                elif actor.pk == m["proposed_by"]:
                    expected = 400
                else:
                    expected = 200
                assert answer.status_code == expected, (op, expected, answer.content)
                if expected == 200:
                    m.update(status="declined", slots=set())
            else:  # cancel
                answer = client.post(url + "cancel/")
                if key == "foreign" or not party:
                    expected = 404
                elif m["status"] == "proposed" and actor.pk != m["proposed_by"]:
                    expected = 400
                elif m["status"] not in ("proposed", "booked"):
                    expected = 409
                else:
                    expected = 200
                assert answer.status_code == expected, (op, expected, answer.content)
                if expected == 200:
                    m.update(status="cancelled", slots=set())
            if expected != 200:
                assert meeting_snapshot() == before, f"refused {op} changed rows"

        tally(f"booked meetings: {sum(len(m.booked()) for m in models)}")
        # Each attendee's list, through their organization's key: exactly their meetings, of their
        # event, as the model has them; the other organization's key sees nothing.
        for model in models:
            event = model.event
            for person in model.people:
                answer = clients[event.organization_id].get(attendee_url(person, "meetings/"))
                assert answer.status_code == 200, answer.content
                got = {item["id"]: item for item in answer.json()}
                mine = {mid: m for mid, m in model.meetings.items() if person.pk in (m["requester"], m["recipient"])}
                assert set(got) == set(mine), f"{person.external_id} of {event.slug}: {set(got) ^ set(mine)}"
                for mid, m in mine.items():
                    item = got[mid]
                    ext = {p.pk: p.external_id for p in model.people}
                    assert (item["requester"], item["recipient"], item["status"]) == (
                        ext[m["requester"]],
                        ext[m["recipient"]],
                        m["status"],
                    )
                    assert parse(item["starts_at"]) == m["start"]
                    assert {parse(s) for s in item["slots"]} == m["slots"]
                assert foreign[event.organization_id].get(attendee_url(person, "meetings/")).status_code == 404

        # The rows: every meeting within one event; holds exactly those of the booked meetings;
        # proposed slots only of open requests; nobody and no place held at overlapping times.
        for meeting in Meeting.objects.select_related("requester", "recipient"):
            assert meeting.requester.event_id == meeting.event_id == meeting.recipient.event_id
            assert meeting.place is None or meeting.place.event_id == meeting.event_id
        expected_holds = set()
        expected_slots = set()
        for model in models:
            by_name = {p.name: p.pk for p in model.places}
            for mid, m in model.meetings.items():
                if m["status"] == "booked":
                    expected_holds |= {(mid, m["requester"], None, m["start"]), (mid, m["recipient"], None, m["start"])}
                    if m["place"] is not None:
                        expected_holds.add((mid, None, by_name[m["place"]], m["start"]))
                expected_slots |= {(mid, s) for s in m["slots"]}
        holds = set(MeetingHold.objects.values_list("meeting_id", "attendee_id", "place_id", "starts_at"))
        assert holds == expected_holds
        assert set(MeetingSlot.objects.values_list("meeting_id", "starts_at")) == expected_slots
        booked = list(
            Meeting.objects.filter(status="booked").values_list(
                "requester_id", "recipient_id", "place_id", "starts_at", "ends_at"
            )
        )
        for k, (a1, b1, p1, s1, e1) in enumerate(booked):
            for a2, b2, p2, s2, e2 in booked[k + 1 :]:
                if s1 < e2 and s2 < e1:
                    assert not {a1, b1} & {a2, b2}, f"a person is held twice: {s1} and {s2}"
                    assert p1 is None or p1 != p2, f"a place is held twice: {s1} and {s2}"


# --- Messages --------------------------------------------------------------------------------------

WORDS = st.builds(  # something to say, maybe padded with whitespace (stored stripped)
    lambda pad, core, tail: pad + core + tail,
    st.sampled_from(["", "", " ", "\t "]),
    st.text(alphabet="ab é😀", min_size=1, max_size=10).filter(str.strip),
    st.sampled_from(["", "", " "]),
)
BODY = st.one_of(WORDS, WORDS, WORDS, st.sampled_from(["", " ", " \t "]))  # now and then, blank
PARTIES = ["requester", "recipient"] * 3
send_st = st.tuples(st.just("send"), st.integers(0, 9), st.sampled_from([*PARTIES, "third", "outsider"]), BODY)
read_st = st.tuples(
    st.just("read"), st.integers(0, 9), st.sampled_from([*PARTIES, "third", "outsider", "foreign"]), st.integers(0, 8)
)
message_op_st = st.one_of(
    send_st,
    send_st,
    send_st,
    read_st,
    read_st,
    st.tuples(st.just("block"), st.integers(0, 3), st.integers(0, 3), st.just(None)),
    st.tuples(st.just("unblock"), st.integers(0, 3), st.integers(0, 3), st.just(None)),
    st.tuples(st.just("accept"), st.integers(0, 9), st.booleans(), st.just(None)),
)
STATUSES = [ConnectionStatus.ACCEPTED] * 2 + [ConnectionStatus.REQUESTED, ConnectionStatus.DECLINED]


@st.composite
def message_worlds(draw):
    n = draw(st.integers(3, 4))
    pairs = [  # never with oneself: the second is 1 to n - 1 places after the first
        (i, (i + d) % n, status)
        for i, d, status in draw(
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(1, n - 1), st.sampled_from(STATUSES)),
                min_size=2,
                max_size=4,
            )
        )
    ]
    return {"n": n, "connections": pairs, "ops": draw(st.lists(message_op_st, min_size=4, max_size=24))}


def other_threads(event, client, ada_bob_texts):
    """A thread of another event (its own external ids "p0" and "p1"), with messages."""
    a = AttendeeFactory(event=event, external_id="p0")
    b = AttendeeFactory(event=event, external_id="p1")
    connection = Connection.objects.create(event=event, requester=a, recipient=b, status=ConnectionStatus.ACCEPTED)
    for who, text in ada_bob_texts:
        answer = client.post(
            attendee_url(a if who == 0 else b, f"connections/{connection.pk}/messages/"),
            {"body": text},
            content_type="application/json",
        )
        assert answer.status_code == 201
    return a, b, connection


class MessagePropertyTests(TestCase):
    """Whatever connections, answers, blocks, unblocks, writes and catch-ups happen in one event
    (next to threads of a sibling event and of another organization, whose people have the same
    external ids): only the two people of an accepted connection write; a block either way hides
    the thread from both and refuses writes, and lifting it shows the thread again, whole; every
    catch-up `?after=n` returns exactly the messages numbered above n, in order, without gaps, and
    nothing of other threads or events; strangers and other organizations get 404."""

    @settings(max_examples=30, **SETTINGS)
    @given(world=message_worlds())
    def test_only_the_two_read_and_write_and_blocks_close_the_thread(self, world):
        cache.clear()
        event = EventFactory()
        sibling = EventFactory(organization=event.organization)
        foreign_event = EventFactory()
        client = key_client(event.organization)
        foreign = key_client(foreign_event.organization)
        sib_a, _, sib_thread = other_threads(sibling, client, [(0, "sibling one"), (1, "sibling two")])
        other_threads(foreign_event, foreign, [(1, "foreign")])
        others_before = sorted(Message.objects.values_list("pk", "connection_id", "number", "body"))

        people = [AttendeeFactory(event=event, external_id=f"p{i}") for i in range(world["n"])]
        threads: list[dict] = []  # requester, recipient, status, connection, messages [(sender ext, body)]
        for i, j, status in world["connections"]:
            a, b = people[i], people[j]
            if a == b or any({t["requester"], t["recipient"]} == {a, b} for t in threads):
                continue
            row = Connection.objects.create(event=event, requester=a, recipient=b, status=status)
            threads.append({"requester": a, "recipient": b, "status": status, "connection": row, "messages": []})
        blocks: set[tuple[int, int]] = set()

        def blocked(t) -> bool:
            a, b = t["requester"].pk, t["recipient"].pk
            return (a, b) in blocks or (b, a) in blocks

        def check_read(t, who, after, answer, caller_ok=True):
            party = who.pk in (t["requester"].pk, t["recipient"].pk) and caller_ok
            if not party or blocked(t):
                assert answer.status_code == 404, answer.content
                return
            assert answer.status_code == 200, answer.content
            got = answer.json()
            expected = [
                {"number": k + 1, "sender": s, "body": body}
                for k, (s, body) in enumerate(t["messages"])
                if k + 1 > after
            ]
            assert [{k: m[k] for k in ("number", "sender", "body")} for m in got["messages"]] == expected
            assert (got["thread"], got["last"]) == (t["connection"].pk, len(t["messages"]))

        for op in world["ops"]:
            kind, x, y, z = op
            if kind in ("block", "unblock"):
                a, b = people[x % len(people)], people[y % len(people)]
                if kind == "block":
                    answer = client.post(
                        attendee_url(a, "blocks/"), {"attendee": b.external_id}, content_type="application/json"
                    )
                    assert answer.status_code == (400 if a == b else 201), answer.content
                    if a != b:
                        blocks.add((a.pk, b.pk))
                else:
                    answer = client.delete(attendee_url(a, f"blocks/{b.external_id}/"))
                    assert answer.status_code == (204 if (a.pk, b.pk) in blocks else 404), answer.content
                    blocks.discard((a.pk, b.pk))
                continue
            if not threads:
                continue
            t = threads[x % len(threads)]
            cid = t["connection"].pk
            if kind == "accept":
                answer = client.post(attendee_url(t["recipient"], f"connections/{cid}/{'accept' if y else 'decline'}/"))
                if t["status"] == ConnectionStatus.REQUESTED:
                    assert answer.status_code == 200, answer.content
                    t["status"] = ConnectionStatus.ACCEPTED if y else ConnectionStatus.DECLINED
                else:
                    assert answer.status_code == 400, answer.content
                continue
            thirds = [p for p in people if p not in (t["requester"], t["recipient"])]
            # "foreign": a party, through the other organization's key; "outsider" (or a third
            # when there is none): someone of the sibling event, through this organization's key.
            who = {"requester": t["requester"], "recipient": t["recipient"], "foreign": t["requester"]}.get(y) or (
                thirds[0] if y == "third" and thirds else sib_a
            )
            caller = foreign if y == "foreign" else client
            url = attendee_url(who, f"connections/{cid}/messages/")
            if kind == "read":
                answer = caller.get(url, {"after": z})
                check_read(t, who, z, answer, caller_ok=y != "foreign")
                continue
            before = Message.objects.count()
            answer = caller.post(url, {"body": z}, content_type="application/json")
            party = who.pk in (t["requester"].pk, t["recipient"].pk)
            if not z.strip():
                expected = 400
            elif not party or blocked(t):
                expected = 404
            elif t["status"] != ConnectionStatus.ACCEPTED:
                expected = 400
            else:
                expected = 201
            why = " (blank)" if not z.strip() else " (blocked)" if expected == 404 and party else ""
            tally(f"send {expected}{why}")
            assert answer.status_code == expected, (op, t["status"], answer.content)
            if expected == 201:
                t["messages"].append((who.external_id, z.strip()))
                assert answer.json()["number"] == len(t["messages"])
            else:
                assert Message.objects.count() == before

        # Every reader of every thread, from scratch and from numbers up to past the last: what the
        # model holds.
        for t in threads:
            for who in people:
                k = len(t["messages"])
                for after in sorted({0, 1, k // 2, k - 1, k, k + 1} - {-1}):
                    answer = client.get(
                        attendee_url(who, f"connections/{t['connection'].pk}/messages/"), {"after": after}
                    )
                    check_read(t, who, after, answer)
                    if answer.status_code == 404:
                        break
            # Someone of the sibling event naming this thread's id, and the other organization.
            assert client.get(attendee_url(sib_a, f"connections/{t['connection'].pk}/messages/")).status_code == 404
            assert (
                foreign.get(attendee_url(t["requester"], f"connections/{t['connection'].pk}/messages/")).status_code
                == 404
            )
            # The rows: numbered 1..k without gaps, all of this event.
            rows = list(Message.objects.filter(connection=t["connection"]).order_by("number"))
            assert [m.number for m in rows] == list(range(1, len(t["messages"]) + 1))
            assert {m.event_id for m in rows} <= {event.pk}
        # An attendee of this event cannot open the sibling's thread with the same organization's key.
        for who in people:
            assert client.get(attendee_url(who, f"connections/{sib_thread.pk}/messages/")).status_code == 404
        assert sorted(Message.objects.exclude(event=event).values_list("pk", "connection_id", "number", "body")) == (
            others_before
        )


# --- Webhooks --------------------------------------------------------------------------------------

KIND_CHOICES = [[], [webhooks.CONNECTION_ACCEPTED], [webhooks.MEETING_BOOKED], list(webhooks.KINDS), ["other.kind"]]
endpoints_st = st.lists(st.tuples(st.booleans(), st.sampled_from(range(len(KIND_CHOICES)))), max_size=3)
webhook_op_st = st.one_of(
    st.tuples(
        st.just("connect"),
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(0, 2),
        st.sampled_from([True, True, False]),
    ),
    st.tuples(st.just("meet"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 7)),
    st.tuples(st.just("toggle"), st.integers(0, 1), st.integers(0, 2), st.just(0), st.just(False)),
)


class WebhookPropertyTests(TestCase):
    """Whatever endpoints two organizations have (active or not, wanting some kinds or all), and
    whatever connections are accepted or declined and meetings booked in their three events, each
    accepted connection or booked meeting makes exactly one delivery per active endpoint of its
    event's organization that wants that kind, about that event; nothing else makes one, and never
    for the other organization."""

    @settings(max_examples=30, **SETTINGS)
    @given(
        endpoints=st.tuples(endpoints_st, endpoints_st),
        ops=st.lists(webhook_op_st, min_size=2, max_size=12),
    )
    def test_deliveries_go_to_the_subscribed_endpoints_of_the_events_organization(self, endpoints, ops):
        cache.clear()
        base = tomorrow_nine()
        first = EventFactory()
        events = [first, EventFactory(organization=first.organization), EventFactory()]
        orgs = [first.organization, events[2].organization]
        clients = {org.pk: key_client(org) for org in orgs}
        hooks = [
            [
                WebhookEndpoint.objects.create(
                    organization=org,
                    url=f"https://platform.example/{org.slug}/{k}",
                    active=active,
                    kinds=KIND_CHOICES[c],
                )
                for k, (active, c) in enumerate(specs)
            ]
            for org, specs in zip(orgs, endpoints, strict=True)
        ]
        people = []
        for event in events:
            MeetingWindow.objects.create(event=event, starts_at=base, ends_at=base + timedelta(hours=2))
            people.append([AttendeeFactory(event=event, external_id=f"p{i}") for i in range(3)])

        for op in ops:
            kind, ev, i, j, extra = op
            if kind == "toggle":
                if hooks[ev]:
                    hook = hooks[ev][i % len(hooks[ev])]
                    hook.active = not hook.active
                    hook.save(update_fields=["active"])
                continue
            event = events[ev]
            client = clients[event.organization_id]
            a, b = people[ev][i], people[ev][j]
            before = set(WebhookDelivery.objects.values_list("pk", flat=True))
            happened = None  # (kind, id of the connection or meeting) when it took place
            if kind == "connect":
                asked = client.post(
                    attendee_url(a, "connections/"), {"recipient": b.external_id}, content_type="application/json"
                )
                if asked.status_code == 201:
                    cid = asked.json()["id"]
                    answer = client.post(attendee_url(b, f"connections/{cid}/{'accept' if extra else 'decline'}/"))
                    assert answer.status_code == 200, answer.content
                    if extra:
                        happened = (webhooks.CONNECTION_ACCEPTED, cid)
                else:
                    assert a == b or Connection.objects.filter(requester__in=[a, b], recipient__in=[a, b]).exists()
            else:
                start = base + timedelta(minutes=15 * extra)
                proposed = client.post(
                    attendee_url(a, "meetings/"),
                    {"recipient": b.external_id, "slots": [iso(start)]},
                    content_type="application/json",
                )
                if proposed.status_code == 201:
                    mid = proposed.json()["id"]
                    answer = client.post(
                        attendee_url(b, f"meetings/{mid}/accept/"),
                        {"starts_at": iso(start)},
                        content_type="application/json",
                    )
                    assert answer.status_code == 200, answer.content
                    happened = (webhooks.MEETING_BOOKED, mid)
            new = list(WebhookDelivery.objects.exclude(pk__in=before).select_related("endpoint"))
            if happened is None:
                assert new == [], f"{op} made deliveries {new}"
                continue
            what, pk = happened
            org_hooks = hooks[orgs.index(event.organization)]
            for hook in org_hooks:
                hook.refresh_from_db()
            wanted = {h.pk for h in org_hooks if h.active and (not h.kinds or what in h.kinds)}
            tally(f"{what}: {len(wanted)} of {len(org_hooks)} endpoints")
            assert sorted(d.endpoint_id for d in new) == sorted(wanted), (op, [(h.active, h.kinds) for h in org_hooks])
            for d in new:
                assert d.endpoint.organization_id == event.organization_id
                assert (d.event_id, d.kind, d.payload["type"], d.payload["event"]) == (event.pk, what, what, event.slug)
                about = d.payload["data"]["connection" if what == webhooks.CONNECTION_ACCEPTED else "meeting"]
                assert (about["id"], about["requester"], about["recipient"]) == (pk, a.external_id, b.external_id)
            assert len({d.message_id for d in new}) == len(new)


# --- Upserts ---------------------------------------------------------------------------------------

TEXT = st.text(alphabet="abcXYZé-", min_size=1, max_size=6)
upsert_item_st = st.fixed_dictionaries(
    {"external_id": st.sampled_from([f"p{i}" for i in range(6)])},
    optional={
        "display_name": TEXT,
        "headline": st.text(alphabet="abc ", max_size=4).map(str.strip),
        "group": st.sampled_from(["", "sponsor", "buyer"]),
        "consent_be_recommended": st.booleans(),
        "consent_receive_recommendations": st.booleans(),
        "consent_training": st.booleans(),
        "interests": st.lists(st.sampled_from(["shared", "shared", "other", "nope"]), unique=True, max_size=2),
        "planned_rooms": st.lists(st.sampled_from(["hall", "lab", "hall", "ghost"]), unique=True, max_size=2),
    },
)
PLAIN = (
    "display_name",
    "headline",
    "group",
    "consent_be_recommended",
    "consent_receive_recommendations",
    "consent_training",
)


def event_facts(event):
    """Everything an attendee upsert may touch in one event, to compare before and after."""
    people = []
    for a in (
        Attendee.objects.filter(event=event).order_by("external_id").prefetch_related("interests", "planned_rooms")
    ):
        people.append(
            (
                a.pk,
                a.external_id,
                *(getattr(a, f) for f in PLAIN),
                a.company,
                a.role,
                a.email,
                a.updated_at,
                tuple(sorted(t.slug for t in a.interests.all())),
                tuple(sorted(r.external_id for r in a.planned_rooms.all())),
            )
        )
    return (
        people,
        sorted(InterestTag.objects.filter(event=event).values_list("pk", "slug", "label")),
        sorted(Room.objects.filter(event=event).values_list("pk", "external_id", "name")),
        Interaction.objects.filter(event=event).count(),
    )


def seed_event(event, n, consents):
    shared = InterestTagFactory(event=event, slug="shared", label="Shared")
    InterestTagFactory(event=event, slug="other", label="Other")
    RoomFactory(event=event, external_id="hall")
    RoomFactory(event=event, external_id="lab")
    people = []
    for i in range(n):
        person = AttendeeFactory(event=event, external_id=f"p{i}", display_name=f"P {i}")
        services.attendee_set_tags(attendee=person, interests=[shared])
        Attendee.objects.filter(pk=person.pk).update(consent_be_recommended=consents[i])
        people.append(person)
    return people


class UpsertPropertyTests(TestCase):
    """Whatever batch of attendees a platform posts to one event (new and known ids, repeated ids,
    unknown topics and rooms, consents set or left out), each item's status is what the merge rules
    say; posting it again changes nothing (every status "unchanged", or "rejected" as before); the
    sibling event and the other organization's event (whose people have the same external ids) are
    untouched, and the other organization's key cannot post to it; and the consents the batch sets
    are honoured by the very next suggestions, though every list was cached before the batch."""

    @settings(max_examples=30, **SETTINGS)
    @given(
        n_existing=st.integers(0, 4),
        consents=st.lists(st.booleans(), min_size=4, max_size=4),
        batch=st.lists(upsert_item_st, min_size=1, max_size=8),
    )
    def test_batches_are_idempotent_stay_in_their_event_and_consents_hold(self, n_existing, consents, batch):
        cache.clear()
        event = EventFactory(exposure_cap_share=1.0)
        sibling = EventFactory(organization=event.organization, exposure_cap_share=1.0)
        foreign_event = EventFactory(exposure_cap_share=1.0)
        client = key_client(event.organization)
        foreign = key_client(foreign_event.organization)
        existing = seed_event(event, n_existing, consents)
        seed_event(sibling, 4, [True] * 4)
        seed_event(foreign_event, 4, [True] * 4)
        # Warm every cached list before the batch: the batch's consents must still hold at once.
        for person in existing:
            assert client.get(attendee_url(person, "recommendations/"), {"num_results": 50}).status_code == 200

        # The model: each known id's fields and lists before the batch.
        state: dict[str, dict] = {}
        for person in Attendee.objects.filter(event=event).prefetch_related("interests", "planned_rooms"):
            state[person.external_id] = {
                **{f: getattr(person, f) for f in PLAIN},
                "interests": {t.slug for t in person.interests.all()},
                "planned_rooms": {r.external_id for r in person.planned_rooms.all()},
            }
        expected_status = []
        seen: set[str] = set()
        for item in batch:
            key = item["external_id"]
            if key in seen:
                expected_status.append("rejected")
                continue
            seen.add(key)
            if set(item.get("interests", [])) - {"shared", "other"} or set(item.get("planned_rooms", [])) - {
                "hall",
                "lab",
            }:
                expected_status.append("rejected")
                continue
            wanted = {f: item[f] for f in PLAIN if f in item}
            wanted |= {f: set(item[f]) for f in ("interests", "planned_rooms") if f in item}
            if key not in state:
                if "display_name" not in item:
                    expected_status.append("rejected")
                    continue
                state[key] = {
                    "headline": "",
                    "group": "",
                    "consent_be_recommended": True,
                    "consent_receive_recommendations": True,
                    "consent_training": True,
                    "interests": set(),
                    "planned_rooms": set(),
                } | wanted
                expected_status.append("created")
                continue
            changed = any(state[key][f] != v for f, v in wanted.items())
            state[key] |= wanted
            expected_status.append("updated" if changed else "unchanged")

        others = (event_facts(sibling), event_facts(foreign_event))
        url = f"/api/v1/events/{event.slug}/attendees/"
        with self.captureOnCommitCallbacks(execute=True):
            first_answer = client.post(url, {"attendees": batch}, content_type="application/json")
        assert first_answer.status_code == 200, first_answer.content
        first_status = [r["status"] for r in first_answer.json()["results"]]
        for status in sorted(set(first_status)):
            tally(f"some {status}")
        assert first_status == expected_status, (batch, first_answer.json())
        after_first = event_facts(event)

        with self.captureOnCommitCallbacks(execute=True):
            second_answer = client.post(url, {"attendees": batch}, content_type="application/json")
        assert second_answer.status_code == 200, second_answer.content
        second_status = [r["status"] for r in second_answer.json()["results"]]
        assert second_status == ["rejected" if s == "rejected" else "unchanged" for s in first_status]
        assert event_facts(event) == after_first, "the same batch again changed rows"

        # Nothing of it reached the sibling event or the other organization's event (their people
        # have the same external ids). The other organization's key cannot post here, nor this one
        # there; the same batch posted to the sibling event leaves this one as it was.
        assert (event_facts(sibling), event_facts(foreign_event)) == others
        assert foreign.post(url, {"attendees": batch}, content_type="application/json").status_code == 404
        elsewhere = f"/api/v1/events/{foreign_event.slug}/attendees/"
        assert client.post(elsewhere, {"attendees": batch}, content_type="application/json").status_code == 404
        assert event_facts(foreign_event) == others[1]
        with self.captureOnCommitCallbacks(execute=True):
            to_sibling = client.post(
                f"/api/v1/events/{sibling.slug}/attendees/", {"attendees": batch}, content_type="application/json"
            )
        assert to_sibling.status_code == 200, to_sibling.content
        assert event_facts(event) == after_first
        assert event_facts(foreign_event) == others[1]

        # The rows hold the model's values (merge semantics: fields left out keep theirs).
        rows = {
            a.external_id: a
            for a in Attendee.objects.filter(event=event).prefetch_related("interests", "planned_rooms")
        }
        assert set(rows) == set(state)
        for key, want in state.items():
            row = rows[key]
            assert {f: getattr(row, f) for f in PLAIN if f in want} == {f: want[f] for f in PLAIN if f in want}
            assert {t.slug for t in row.interests.all()} == want["interests"]
            assert {r.external_id for r in row.planned_rooms.all()} == want["planned_rooms"]

        # Consents, at once (the lists cached before the batch, and the rules engine's candidate
        # index, may be stale): nobody who withdrew "be recommended" is suggested to anyone, and a
        # viewer who withdrew "receive" gets nothing. Once the index is rebuilt (it may lag by
        # RULES_INDEX_SECONDS, by design), everyone else who shares the topic is suggested too.
        may_appear = {k for k, a in rows.items() if a.consent_be_recommended}
        for complete in (False, True):
            if complete:
                forget_rules_indexes()
                cache.clear()
            for key, viewer in rows.items():
                answer = client.get(attendee_url(viewer, "recommendations/"), {"num_results": 50})
                assert answer.status_code == 200, answer.content
                got = {item["external_id"] for item in answer.json()["items"]}
                if not viewer.consent_receive_recommendations:
                    assert got == set(), f"{key} withdrew receive but got {got}"
                    continue
                assert got <= may_appear - {key}, f"{key} was shown {got - (may_appear - {key})}"
                if complete and "shared" in state[key]["interests"]:
                    sharing = {k for k in may_appear - {key} if "shared" in state[k]["interests"]}
                    assert sharing <= got, f"{key} missed {sharing - got}"
