"""A believable demo event, generated deterministically from a seed.

About 300 attendees in six communities of interest, 20 rooms over one day (two keynotes that
everyone drifts into, three sessions per community), 40 content items, and a day of room visits,
content views and chat with log-normal dwell times, including the accidental clicks (a few
seconds in a room) that the qualifying threshold exists to filter out.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils.text import slugify

from .enums import InteractionSource, InteractionType, MeetingStatus
from .models import (
    Attendee,
    Content,
    Event,
    Interaction,
    InterestTag,
    Meeting,
    MeetingHold,
    MeetingPlace,
    MeetingSlot,
    MeetingWindow,
    Organization,
    Room,
)
from .services import interaction_qualifies

COMMUNITIES: dict[str, list[str]] = {
    "Data & ML": ["MLOps", "Deep learning", "Data engineering", "LLM applications"],
    "Databases": ["PostgreSQL", "Distributed systems", "Query performance"],
    "Security": ["Application security", "Privacy engineering", "Identity & access"],
    "Frontend": ["React", "Accessibility", "Design systems"],
    "Product": ["Product management", "Growth", "UX research"],
    "Cloud": ["Kubernetes", "Serverless", "Observability", "FinOps"],
}
GENERAL_TAGS = ["Open source", "Hiring", "Career growth", "Startups", "Developer relations"]

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Arjun",
    "Ayesha",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Chloe",
    "Dalia",
    "Daniel",
    "Diego",
    "Elena",
    "Emeka",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jade",
    "Jamal",
    "Jonas",
    "Julia",
    "Kai",
    "Karin",
    "Kenji",
    "Lara",
    "Leo",
    "Lina",
    "Lucas",
    "Maya",
    "Mei",
    "Mohamed",
    "Nadia",
    "Noah",
    "Nora",
    "Omar",
    "Priya",
    "Rafael",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Uma",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Abe",
    "Adeyemi",
    "Alvarez",
    "Andersen",
    "Bauer",
    "Becker",
    "Bianchi",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kim",
    "Kowalski",
    "Laurent",
    "Lee",
    "Lindqvist",
    "Martin",
    "Moreau",
    "Nakamura",
    "Novak",
    "Okafor",
    "Oliveira",
    "Park",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Singh",
    "Sato",
    "Tanaka",
    "Tran",
    "Varga",
    "Wang",
    "Weber",
    "Yilmaz",
    "Zhang",
]
COMPANIES = [
    "Acme Analytics",
    "Blue Harbor",
    "Cloudline",
    "Datawise",
    "Evergreen Health",
    "Fjord Labs",
    "Greenfield Bank",
    "Helix Bio",
    "Inkwell",
    "Juniper Retail",
    "Kestrel Systems",
    "Lumen Energy",
    "Mosaic Media",
    "Northwind",
    "Orbital Logistics",
    "Pinecone Games",
    "Quanta Insurance",
    "Riverbed Schools",
    "Solstice Travel",
    "Tidepool",
    "Umbra Security",
    "Vantage City",
]
ROLES_BY_COMMUNITY = {
    "Data & ML": ["ML engineer", "Data scientist", "Data engineer", "Head of data"],
    "Databases": ["Database engineer", "Backend engineer", "SRE", "Staff engineer"],
    "Security": ["Security engineer", "CISO", "Privacy lead", "Pentester"],
    "Frontend": ["Frontend engineer", "Design engineer", "UI designer", "Engineering manager"],
    "Product": ["Product manager", "UX researcher", "Growth lead", "Founder"],
    "Cloud": ["Platform engineer", "DevOps engineer", "Cloud architect", "FinOps analyst"],
}
GROUPS = [("attendee", 0.78), ("sponsor", 0.08), ("speaker", 0.07), ("buyer", 0.07)]
SESSION_ANGLES = ["lessons from production", "the state of the art", "a hands-on deep dive", "what we got wrong"]
SLOTS = [(9, 0), (10, 0), (11, 15), (13, 30), (14, 30), (15, 45), (16, 45)]  # local start times
SLOT_MINUTES = 55
KEYNOTE_SLOTS = {0, 6}


@dataclass
class DemoSummary:
    event: Event
    attendees: int
    rooms: int
    contents: int
    interactions: int
    qualifying: int


# Meeting hours of the demo day (hours after its 09:00 start), and the organizer's places.
MEETING_WINDOWS = ((3.0, 5.0), (6.0, 9.0))  # 12:00-14:00 and 15:00-18:00 local
MEETING_TABLES, MEETING_VIRTUAL_TABLES = 10, 5
DEMO_MEETINGS = 24


def _seed_meetings(event: Event, people: list[Attendee], start: datetime, rng: random.Random) -> None:
    """Meeting hours and places, and meetings booked during the day among attendees (written as
    rows, like the day's interactions: history, not requests). The first attendee (the one `make
    demo` signs in as) also has a booked meeting ahead and a request to answer."""
    for begin, end in MEETING_WINDOWS:
        MeetingWindow.objects.create(
            event=event, starts_at=start + timedelta(hours=begin), ends_at=start + timedelta(hours=end)
        )
    places = [MeetingPlace(event=event, name=f"Table {i + 1}") for i in range(MEETING_TABLES)]
    places += [
        MeetingPlace(event=event, name=f"Virtual table {i + 1}", url=f"https://meet.example.org/{event.slug}-{i + 1}")
        for i in range(MEETING_VIRTUAL_TABLES)
    ]
    MeetingPlace.objects.bulk_create(places)
    slot = timedelta(minutes=event.meeting_slot_minutes)
    starts = [
        start + timedelta(hours=begin) + k * slot
        for begin, end in MEETING_WINDOWS
        for k in range(int((end - begin) * 60 // event.meeting_slot_minutes))
    ]
    busy: set[tuple[int, datetime]] = set()
    meetings, holds = [], []
    me, others = people[0], people[1:]
    wanted = [(me, others[0], starts[-4]), *[(None, None, None)] * DEMO_MEETINGS]
    for a, b, at in wanted:
        if a is None:
            a, b = rng.sample(others, 2)
            at = rng.choice(starts)
        assert a is not None and b is not None and at is not None
        if (a.pk, at) in busy or (b.pk, at) in busy:
            continue
        taken = sum(1 for (who, when) in busy if when == at and who < 0)
        place = places[taken % len(places)]
        busy.update({(a.pk, at), (b.pk, at), (-place.pk, at)})
        meeting = Meeting(
            event=event,
            requester=a,
            recipient=b,
            proposed_by=a,
            status=MeetingStatus.BOOKED,
            starts_at=at,
            ends_at=at + slot,
            place=place,
        )
        if at < start + timedelta(hours=MEETING_WINDOWS[1][0]) and rng.random() < 0.7:
            # The midday meetings are over; most were held (both checked in).
            meeting.requester_checked_in_at = meeting.recipient_checked_in_at = meeting.held_at = at
        meetings.append(meeting)
    Meeting.objects.bulk_create(meetings)
    for m in meetings:
        assert m.starts_at is not None and m.ends_at is not None
        holds += [
            MeetingHold(meeting=m, attendee=m.requester, starts_at=m.starts_at, ends_at=m.ends_at),
            MeetingHold(meeting=m, attendee=m.recipient, starts_at=m.starts_at, ends_at=m.ends_at),
            MeetingHold(meeting=m, place=m.place, starts_at=m.starts_at, ends_at=m.ends_at),
        ]
    MeetingHold.objects.bulk_create(holds)
    asking = others[1]
    request = Meeting.objects.create(
        event=event, requester=asking, recipient=me, proposed_by=asking, message="Shall we compare notes?"
    )
    free = [at for at in starts[-8:] if (me.pk, at) not in busy and (asking.pk, at) not in busy][:3]
    MeetingSlot.objects.bulk_create([MeetingSlot(meeting=request, starts_at=at) for at in free])


def _lognormal_seconds(rng: random.Random, median: float, sigma: float, cap: float) -> float:
    return round(min(cap, rng.lognormvariate(0, sigma) * median), 1)


@transaction.atomic
def seed_demo_event(
    *,
    seed: int,
    start: datetime,
    slug: str = "demo",
    name: str = "Demo Conference",
    organization_slug: str = "demo-org",
    attendees: int = 300,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Create the demo event with every row it needs. `start` is the beginning of the live day
    (09:00 local); everything else follows from the seed, so two runs give identical rows."""
    rng = random.Random(seed)
    organization, _ = Organization.objects.get_or_create(slug=organization_slug, defaults={"name": "Demo Org"})
    event = Event.objects.create(
        organization=organization,
        slug=slug,
        name=name,
        timezone="Europe/Paris",
        live_starts_at=start - timedelta(minutes=30),
        live_ends_at=start + timedelta(hours=9),
        on_demand_ends_at=start + timedelta(days=30),
    )

    tags: dict[str, InterestTag] = {}
    for label in [t for labels in COMMUNITIES.values() for t in labels] + GENERAL_TAGS:
        tags[label] = InterestTag.objects.create(event=event, slug=slugify(label), label=label)

    # Rooms: two keynotes, then three sessions per community spread over the day's slots.
    rooms: list[tuple[Room, str | None, int]] = []
    community: str | None  # of a room or a piece of content; None for the keynotes
    keynote_titles = ["Opening keynote: the year in engineering", "Closing keynote: building what lasts"]
    for i, slot in enumerate(sorted(KEYNOTE_SLOTS)):
        room = Room.objects.create(
            event=event,
            external_id=f"room-{len(rooms) + 1:02d}",
            name=keynote_titles[i],
            track="Keynote",
            starts_at=start + timedelta(hours=SLOTS[slot][0] - 9, minutes=SLOTS[slot][1]),
            ends_at=start + timedelta(hours=SLOTS[slot][0] - 9, minutes=SLOTS[slot][1] + SLOT_MINUTES),
        )
        rooms.append((room, None, slot))
    session_slots = [s for s in range(len(SLOTS)) if s not in KEYNOTE_SLOTS]
    for c_index, (community, labels) in enumerate(COMMUNITIES.items()):
        for k in range(3):
            slot = session_slots[(c_index + k * 2) % len(session_slots)]
            topic = labels[k % len(labels)]
            room = Room.objects.create(
                event=event,
                external_id=f"room-{len(rooms) + 1:02d}",
                name=f"{topic}: {rng.choice(SESSION_ANGLES)}",
                track=community,
                starts_at=start + timedelta(hours=SLOTS[slot][0] - 9, minutes=SLOTS[slot][1]),
                ends_at=start + timedelta(hours=SLOTS[slot][0] - 9, minutes=SLOTS[slot][1] + SLOT_MINUTES),
            )
            room.topics.set([tags[topic], tags[labels[(k + 1) % len(labels)]]])
            rooms.append((room, community, slot))

    # Content: recordings of each room plus standalone articles and demos per community.
    contents: list[tuple[Content, str | None]] = []
    for room, community, _slot in rooms:
        contents.append(
            (
                Content.objects.create(
                    event=event,
                    external_id=f"content-{len(contents) + 1:02d}",
                    title=f"Recording: {room.name}",
                    kind="video",
                    room=room,
                    duration_seconds=SLOT_MINUTES * 60,
                ),
                community,
            )
        )
    community_names = list(COMMUNITIES)
    while len(contents) < 40:
        community = community_names[len(contents) % len(community_names)]
        topic = rng.choice(COMMUNITIES[community])
        kind = rng.choice(["article", "demo", "whitepaper", "video"])
        content = Content.objects.create(
            event=event,
            external_id=f"content-{len(contents) + 1:02d}",
            title=f"{topic} {kind} #{len(contents) + 1}",
            kind=kind,
            duration_seconds=rng.randint(3, 20) * 60,
        )
        content.topics.set([tags[topic]])
        contents.append((content, community))

    # Attendees, each with a home community, maybe a second one, and declared tags.
    people: list[tuple[Attendee, str, str | None, float]] = []
    used_names: set[str] = set()
    for i in range(attendees):
        while True:
            display_name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            if display_name not in used_names:
                used_names.add(display_name)
                break
        home = rng.choices(community_names, weights=[1.4, 1.1, 0.8, 0.9, 0.8, 1.0])[0]
        second = rng.choice([c for c in community_names if c != home]) if rng.random() < 0.45 else None
        company = rng.choice(COMPANIES)
        role = rng.choice(ROLES_BY_COMMUNITY[home])
        group = rng.choices([g for g, _ in GROUPS], weights=[w for _, w in GROUPS])[0]
        attendee = Attendee.objects.create(
            event=event,
            external_id=f"att-{i + 1:04d}",
            display_name=display_name,
            headline=f"{role} at {company}",
            company=company,
            role=role,
            group=group,
            consent_be_recommended=rng.random() > 0.02,
            consent_receive_recommendations=rng.random() > 0.02,
            consent_training=rng.random() > 0.03,
            # The attendee `make demo` signs in as gets mails (printed by the console backend).
            email="att-0001@example.org" if i == 0 else "",
        )
        home_tags = rng.sample(COMMUNITIES[home], k=min(len(COMMUNITIES[home]), rng.randint(2, 3)))
        second_tags = rng.sample(COMMUNITIES[second], k=1) if second else []
        general = rng.sample(GENERAL_TAGS, k=rng.randint(0, 2))
        attendee.interests.set([tags[t] for t in home_tags + second_tags + general])
        attendee.offers.set([tags[rng.choice(home_tags)]])
        seeks = second_tags or [rng.choice(GENERAL_TAGS)]
        attendee.seeks.set([tags[seeks[0]]])
        planned = [r for r, c, _ in rooms if c in (home, second)]
        attendee.planned_rooms.set(rng.sample(planned, k=min(len(planned), rng.randint(1, 4))))
        # Power-law activity: most people attend a few sessions, a few attend everything.
        activity = min(1.0, rng.paretovariate(2.2) / 3.0)
        people.append((attendee, home, second, activity))
        if progress:
            progress(1)

    interactions: list[Interaction] = []

    def add(attendee: Attendee, type_: str, occurred_at: datetime, value: float | None, **context) -> None:
        interactions.append(
            Interaction(
                event=event,
                attendee=attendee,
                type=type_,
                value=value,
                occurred_at=occurred_at,
                client_event_id=f"seed-{seed}-{len(interactions) + 1}",
                source=InteractionSource.IMPORT,
                qualifies=interaction_qualifies(event=event, type=type_, value=value),
                **context,
            )
        )

    rooms_by_slot: dict[int, list[tuple[Room, str | None]]] = {}
    for room, community, slot in rooms:
        rooms_by_slot.setdefault(slot, []).append((room, community))
    for attendee, home, second, activity in people:
        for slot in range(len(SLOTS)):
            if rng.random() > 0.25 + 0.7 * activity:
                continue
            options = rooms_by_slot[slot]
            weights = [
                3.0 if community is None else 6.0 if community == home else 3.0 if community == second else 0.4
                for _room, community in options
            ]
            room, _community = rng.choices(options, weights=weights)[0]
            assert room.starts_at is not None  # every room above is created with its slot's times
            joined = room.starts_at + timedelta(seconds=rng.uniform(-120, 600))
            if rng.random() < 0.12:  # an accidental click or a peek: seconds, not minutes
                dwell = round(rng.uniform(3, 45), 1)
            else:
                dwell = _lognormal_seconds(rng, median=25 * 60, sigma=0.5, cap=SLOT_MINUTES * 60)
            add(attendee, InteractionType.JOIN_ROOM, joined, dwell, room=room)
            if dwell > 300 and rng.random() < 0.3:
                add(attendee, InteractionType.CHAT, joined + timedelta(seconds=dwell / 2), None, room=room)
        for _ in range(int(rng.random() * 6 * activity + rng.random() * 2)):
            weights = [5.0 if c == home else 2.0 if c == second else 0.5 for _content, c in contents]
            content, _community = rng.choices(contents, weights=weights)[0]
            watched = _lognormal_seconds(rng, median=240, sigma=0.9, cap=float(content.duration_seconds or 1200))
            when = start + timedelta(seconds=rng.uniform(0, 8 * 3600))
            add(attendee, InteractionType.VIEW_CONTENT, when, watched, content=content)

    Interaction.objects.bulk_create(interactions, batch_size=2000)
    _seed_meetings(event, [a for a, *_ in people], start, rng)
    return DemoSummary(
        event=event,
        attendees=len(people),
        rooms=len(rooms),
        contents=len(contents),
        interactions=len(interactions),
        qualifying=sum(1 for i in interactions if i.qualifies),
    )
