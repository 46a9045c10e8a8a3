"""Live traffic for the demo: attendees walking between rooms, through the real presence services.

Every move is a `presence_leave` and/or a `presence_join`, exactly what a platform's REST batch or
a room page's WebSocket causes: visits open and close, closed visits become `join_room`
interactions with their dwell, the presence snapshot and the live pushes follow. Rates are those of
a busy hall sped up for a demo: a walker stays a log-normal time in a room (median
`--median-stay` seconds), sometimes steps out to the lobby, and prefers the rooms of their planned
sessions and interests.

With `--server URL` the moves go to that server's REST batch endpoint instead (joins without a
value and leaves, as a platform sends them), with an API key of the event's organization: the
embedded demo (local-memory cache, in-memory channel layer) only pushes from inside the server
process, so that is how `make demo` runs it.
"""

import json
import math
import random
import signal
import time
import uuid
from urllib.error import URLError
from urllib.request import Request, urlopen

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone

from events.models import Attendee, Event, Room, RoomVisit
from events.presence import presence_join, presence_leave
from events.services import api_key_create

SIM_PREFIX = "sim:"


class Command(BaseCommand):
    help = "Move demo attendees between rooms at believable rates (Ctrl-C to stop)."

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="Event slug")
        parser.add_argument("--walkers", type=int, default=80, help="Attendees on the move")
        parser.add_argument("--median-stay", type=float, default=45.0, help="Median seconds in a room")
        parser.add_argument("--lobby-share", type=float, default=0.2, help="Share of moves that go to the lobby")
        parser.add_argument("--duration", type=float, default=0, help="Stop after this many seconds (0: never)")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--server", help="Send the moves to this server's REST API instead of calling services")
        parser.add_argument("--api-key", help="With --server: the organization's API key (default: create one)")
        parser.add_argument(
            "--focus", help="External id of an attendee (the demo login): half the walkers share their interests"
        )

    def handle(
        self, *args, event, walkers, median_stay, lobby_share, duration, seed, focus, server, api_key, **options
    ) -> None:
        # Live pushes (when this process calls the services itself) are computed inline: pool
        # threads would still be busy when the command exits, and die with the interpreter.
        settings.LIVE_PUSH_THREADS = 0
        event_obj = Event.objects.filter(slug=event).first()
        if event_obj is None:
            raise CommandError(f"--event: no event {event!r}")
        if walkers < 1 or median_stay <= 0 or not 0 <= lobby_share <= 1:
            raise CommandError("--walkers must be >= 1, --median-stay > 0, --lobby-share within [0, 1]")
        rng = random.Random(seed)
        rooms = list(Room.objects.filter(event=event_obj).prefetch_related("topics"))
        if not rooms:
            raise CommandError(f"--event: event {event!r} has no rooms to walk between")
        people = self._walkers(event_obj, walkers, focus, rng)
        self.server = server.rstrip("/") if server else None
        if self.server:
            self.api_key = api_key or api_key_create(organization=event_obj.organization, name="traffic simulator")[1]
            self.external = dict(Attendee.objects.filter(event=event_obj).values_list("pk", "external_id"))
            self.room_ids = {r.pk: r.external_id for r in rooms}
            self._wait_for_server()
        self._close_leftovers(event_obj)
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

        preferred = {}
        for person in people:
            planned = set(person.planned_rooms.values_list("pk", flat=True))
            interests = set(person.interests.values_list("pk", flat=True))
            preferred[person.pk] = [
                r for r in rooms if r.pk in planned or interests & {t.pk for t in r.topics.all()}
            ] or rooms
        where: dict[int, int | None] = {p.pk: None for p in people}
        due = {p.pk: time.monotonic() + rng.uniform(0, median_stay) for p in people}
        sigma = 0.8
        moves = 0
        started = last_report = time.monotonic()
        self.stdout.write(f"Simulating {len(people)} walkers in {len(rooms)} rooms of {event!r} (Ctrl-C to stop).")
        try:
            while not stop["now"] and (not duration or time.monotonic() - started < duration):
                now = time.monotonic()
                for pk in [pk for pk, t in due.items() if t <= now]:
                    target = None if rng.random() < lobby_share else rng.choice(preferred[pk]).pk
                    self._move(event_obj, pk, where[pk], target)
                    where[pk] = target
                    moves += 1
                    due[pk] = now + rng.lognormvariate(math.log(median_stay), sigma)
                if now - last_report >= 30:
                    in_rooms = sum(1 for r in where.values() if r is not None)
                    self.stdout.write(f"{moves} moves so far; {in_rooms} walkers in rooms now")
                    last_report = now
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            for pk, room_id in where.items():
                if room_id is not None:
                    self._move(event_obj, pk, room_id, None)
            self.stdout.write(f"Stopped after {moves} moves; everyone walked out.")

    def _walkers(self, event: Event, n: int, focus: str | None, rng: random.Random) -> list[Attendee]:
        qs = Attendee.objects.filter(event=event).order_by("pk")
        chosen: list[Attendee] = []
        if focus:
            me = qs.filter(external_id=focus).first()
            if me is None:
                raise CommandError(f"--focus: no attendee {focus!r} in event {event.slug!r}")
            tags = list(me.interests.values_list("pk", flat=True))
            alike = list(
                qs.exclude(pk=me.pk)
                .annotate(shared=Count("interests", filter=Q(interests__in=tags)))
                .filter(shared__gt=0)
                .order_by("-shared", "pk")[: n // 2]
            )
            chosen.extend(alike)
        rest = [a for a in qs.exclude(external_id=focus or "") if a.pk not in {c.pk for c in chosen}]
        chosen.extend(rng.sample(rest, min(len(rest), n - len(chosen))))
        return chosen

    def _wait_for_server(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                urlopen(f"{self.server}/healthz", timeout=2)
                return
            except (URLError, OSError):
                if time.monotonic() > deadline:
                    raise CommandError(f"--server: {self.server} did not answer within {seconds:.0f} s") from None
                time.sleep(0.5)

    def _post(self, event: Event, items: list[dict]) -> None:
        request = Request(
            f"{self.server}/api/v1/events/{event.slug}/interactions/",
            data=json.dumps({"interactions": items}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Api-Key {self.api_key}"},
            method="POST",
        )
        try:
            with urlopen(request, timeout=10) as response:
                body = json.loads(response.read())
        except (URLError, OSError) as exc:
            self.stderr.write(f"could not send moves to {self.server}: {exc}")
            return
        for result in body.get("results", []):
            if result["status"] == "rejected":
                self.stderr.write(f"move rejected: {result.get('reason')}")

    def _move(self, event: Event, attendee_id: int, from_room: int | None, to_room: int | None) -> None:
        now = timezone.now()
        if self.server:
            items = [
                {
                    "client_event_id": f"{SIM_PREFIX}{uuid.uuid4()}",
                    "attendee_id": self.external[attendee_id],
                    "context_kind": "room",
                    "context_id": self.room_ids[room],
                    "type": kind,
                    "occurred_at": now.isoformat(),
                }
                for kind, room in (("leave_room", from_room), ("join_room", to_room))
                if room is not None
            ]
            if items:  # lobby to lobby: nothing happened
                self._post(event, items)
            return
        if from_room is not None:
            presence_leave(
                event=event,
                attendee_id=attendee_id,
                room_id=from_room,
                at=now,
                client_event_id=f"{SIM_PREFIX}{uuid.uuid4()}",
            )
        if to_room is not None:
            presence_join(
                event=event,
                attendee_id=attendee_id,
                room_id=to_room,
                at=now,
                client_event_id=f"{SIM_PREFIX}{uuid.uuid4()}",
            )
        if self.verbosity >= 2:
            self.stdout.write(f"attendee {attendee_id}: {from_room} -> {to_room}")

    def _close_leftovers(self, event: Event) -> None:
        """Visits a previous, killed run left open would keep people "here" for ever."""
        for visit in RoomVisit.objects.filter(
            event=event, left_at__isnull=True, joined_at__isnull=False, join_client_event_id__startswith=SIM_PREFIX
        ):
            presence_leave(
                event=event,
                attendee_id=visit.attendee_id,
                room_id=visit.room_id,
                at=timezone.now(),
                client_event_id=f"{SIM_PREFIX}{uuid.uuid4()}",
                visit_id=visit.pk,
            )

    def execute(self, *args, **options):
        self.verbosity = options.get("verbosity", 1)
        return super().execute(*args, **options)
