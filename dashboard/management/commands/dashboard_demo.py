"""manage.py dashboard_demo --event demo: bring a seeded demo event to life for its dashboard.

`seed_demo` writes a day of interactions; this adds what a running event has beyond them, through
the same services the product uses: the phase refreshed (cold -> live once the threshold is met),
the local model trained, attendees in rooms right now, suggestions shown and acted upon (the
funnel), and the batch table. Deterministic for a given --seed.
"""

import random
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from events import meetings
from events.models import Attendee, Event, Room
from events.presence import presence_join
from events.services import connection_request, connection_respond
from recommendations.backends.local.fit import train_event_now
from recommendations.jobs.batch import batch_run
from recommendations.jobs.phases import event_refresh_phase
from recommendations.serving.funnel import Stage, funnel_record, funnel_record_shown
from recommendations.serving.lists import recommendations_for

NO_EVENT = "--event: no event with slug {slug!r} (run `manage.py seed_demo` first)"


class Command(BaseCommand):
    help = "Give a seeded demo event a live state: phase, a trained model, people in rooms, a funnel, a batch."

    def add_arguments(self, parser):
        parser.add_argument("--event", default="demo", help="Event slug.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--present", type=int, default=70, help="Attendees in a room right now.")
        parser.add_argument("--viewers", type=int, default=120, help="Attendees who were shown suggestions.")
        parser.add_argument(
            "--again", action="store_true", help="Run even if the event already has a model (adds to its funnel)."
        )

    def handle(self, *args, event, seed, present, viewers, again, **options):
        ev = Event.objects.select_related("organization").filter(slug=event).first()
        if ev is None:
            raise CommandError(NO_EVENT.format(slug=event))
        if ev.model_versions.exists() and not again:
            # `make demo` runs this every time; the second time there is nothing to set up.
            self.stdout.write(f"Event {event!r} already has a live state; nothing to do (use --again).")
            return
        rng = random.Random(seed)
        for transition in event_refresh_phase(event=ev):
            self.stdout.write(f"phase: {transition.from_phase} -> {transition.to_phase}")
        ev.refresh_from_db()
        version = train_event_now(event=ev, trigger="cli")
        self.stdout.write(f"model: v{version.number} {version.status}")

        people = list(Attendee.objects.filter(event=ev).select_related("event").order_by("pk"))
        rooms = list(Room.objects.filter(event=ev).order_by("pk"))[:8]
        now = timezone.now()
        for person in rng.sample(people, min(present, len(people))):
            presence_join(
                event=ev,
                attendee_id=person.pk,
                room_id=rng.choice(rooms).pk,
                at=now - timedelta(seconds=rng.randint(30, 1500)),
                client_event_id=f"dashboard-demo-{person.pk}",
            )
        by_id = {p.pk: p for p in people}
        for viewer in rng.sample(people, min(viewers, len(people))):
            result = recommendations_for(attendee=viewer, num_results=10)
            funnel_record_shown(viewer=viewer, result=result)
            for item in result.items[:4]:
                if rng.random() >= 0.45:
                    continue
                funnel_record(viewer_id=viewer.pk, suggested_id=item.attendee_id, stage=Stage.OPENED)
                if rng.random() >= 0.35:
                    continue
                try:
                    with transaction.atomic():
                        request = connection_request(requester=viewer, recipient=by_id[item.attendee_id])
                except (IntegrityError, ValidationError):
                    continue  # the pair is already connected the other way round
                if rng.random() < 0.6:
                    other = by_id[item.attendee_id]
                    connection_respond(connection=request, responder=other, accept=True)
                    # Half of the new connections book a meeting at their first free slot.
                    free = meetings.free_slots(ev, viewer, other, limit=1)
                    if free and rng.random() < 0.5:
                        try:
                            meeting = meetings.meeting_propose(requester=viewer, recipient=other, starts=free)
                            meetings.meeting_accept(meeting=meeting, by=other, start=free[0])
                        except (ValidationError, meetings.MeetingConflict):
                            pass  # one of them has an open request already
        run = batch_run(event=ev, trigger="cli")
        self.stdout.write(self.style.SUCCESS(f"batch: {run.message}"))
