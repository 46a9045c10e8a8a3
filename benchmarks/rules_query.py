"""Rules engine latency: one attendee's suggestions among 50k attendees, from the database.

Builds (once, then reuses) an event of 50,000 attendees with skewed declared data: 5 interests each
drawn from 300 tags by a Zipf law (the top tag is declared by ~20k people: the worst case for a
set-based query), one offer and one seek for 30% of them, 3 planned rooms out of 100. Then times
`rules_candidates(limit=25)` for 200 attendees (p50, p99, max) and, side by side, the obvious peer:
score every attendee in Python with the same pure `score_pair` over data already in memory
(loading excluded), for 20 attendees.

    DATABASE_URL=postgres://... python benchmarks/rules_query.py [--attendees 50000] [--rebuild]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django

django.setup()

from django.db import transaction  # noqa: E402

from events.models import Attendee, Event, InterestTag, Organization, Room  # noqa: E402
from recommendations.backends.rules import (  # noqa: E402
    declared_for,
    load_rules,
    rules_candidates,
    rules_index,
    score_pair,
)
from recommendations.management.commands.simulate_event import _insert_attendees, _pks, _write  # noqa: E402

SLUG = "bench-rules"


def build(n: int) -> Event:
    rng = np.random.default_rng(7)
    org, _ = Organization.objects.get_or_create(slug="synthetic", defaults={"name": "Synthetic events"})
    event = Event.objects.create(organization=org, slug=f"{SLUG}-{n}", name=f"Rules benchmark ({n})")
    InterestTag.objects.bulk_create([InterestTag(event=event, slug=f"t{i}", label=f"Tag {i}") for i in range(300)])
    Room.objects.bulk_create([Room(event=event, external_id=f"r{i}", name=f"Session {i}") for i in range(100)])
    _insert_attendees(event, n)
    att = _pks(Attendee, event, "att-", n)
    tags = np.array(sorted(InterestTag.objects.filter(event=event).values_list("pk", flat=True)))
    rooms = np.array(sorted(Room.objects.filter(event=event).values_list("pk", flat=True)))
    p = 1.0 / np.arange(1, 301)
    p /= p.sum()
    pairs = {(a, t) for a in range(n) for t in rng.choice(300, 5, p=p)}
    inter = np.array(sorted(pairs))
    _write(Attendee.interests.through, ["attendee_id", "interesttag_id"], [att[inter[:, 0]], tags[inter[:, 1]]])
    for field in ("offers", "seeks"):
        who = np.flatnonzero(rng.random(n) < 0.3)
        what = rng.choice(300, who.size, p=p)
        _write(getattr(Attendee, field).through, ["attendee_id", "interesttag_id"], [att[who], tags[what]])
    planned = {(a, r) for a in range(n) for r in rng.integers(0, 100, 3)}
    pl = np.array(sorted(planned))
    _write(Attendee.planned_rooms.through, ["attendee_id", "room_id"], [att[pl[:, 0]], rooms[pl[:, 1]]])
    return event


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attendees", type=int, default=50_000)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    slug = f"{SLUG}-{args.attendees}"
    event = Event.objects.filter(slug=slug).first()
    if event is not None and args.rebuild:
        event.delete()
        event = None
    if event is None:
        t = time.perf_counter()
        with transaction.atomic():
            event = build(args.attendees)
        print(f"built {slug} in {time.perf_counter() - t:.1f}s")
    ids = sorted(Attendee.objects.filter(event=event).values_list("pk", flat=True))
    sample = [ids[i] for i in np.linspace(0, len(ids) - 1, 200).astype(int)]
    t = time.perf_counter()
    rules_index(event=event)  # built once per process and event, then refreshed every RULES_INDEX_SECONDS
    print(f"index of declared data built in {(time.perf_counter() - t) * 1000:.0f} ms")
    times, found = [], 0
    for pk in sample:
        t = time.perf_counter()
        found += len(rules_candidates(event=event, attendee=Attendee(pk=pk, event=event), limit=25))
        times.append((time.perf_counter() - t) * 1000)
    ms = np.array(times)
    print(
        f"rules_candidates, {len(ids)} attendees, 200 viewers: p50 {np.percentile(ms, 50):.1f} ms, "
        f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms ({found / 200:.1f} candidates each)"
    )

    declared = declared_for(attendee_ids=ids)  # the peer's data, loaded outside the timing
    rules = load_rules(event=event)
    labels = dict(InterestTag.objects.filter(event=event).values_list("pk", "label"))
    names = dict(Room.objects.filter(event=event).values_list("pk", "name"))
    peer = []
    for pk in sample[:20]:
        t = time.perf_counter()
        viewer = declared[pk]
        scored = [
            (score_pair(viewer, d, rules=rules, tag_labels=labels, room_names=names)[0], o)
            for o, d in declared.items()
            if o != pk
        ]
        sorted((-s, o) for s, o in scored if s > 0)[:25]
        peer.append((time.perf_counter() - t) * 1000)
    pm = np.array(peer)
    print(
        f"peer: score_pair over every attendee in memory, 20 viewers: p50 {np.percentile(pm, 50):.1f} ms, "
        f"max {pm.max():.1f} ms; speed-up at p50: {np.percentile(pm, 50) / np.percentile(ms, 50):.1f}x"
    )


if __name__ == "__main__":
    main()
