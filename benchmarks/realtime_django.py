"""Real-time update through Django: one new qualifying interaction -> `realtime_apply` (read the
row, update the live model, recompute the touched attendees, write their lists to the shared
cache), timed end to end on a simulated event, next to a full retrain of the same event.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python manage.py simulate_event --size M --slug sim-m
    DATABASE_URL=postgres://... REDIS_URL=redis://... python benchmarks/realtime_django.py --event sim-m [--updates 300]

The script trains the event first if it has no published version, and adds `--updates` synthetic
room visits (marked `bench-rt-*`) to it.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django

django.setup()

from events.models import Attendee, Event, Interaction, Room  # noqa: E402
from recommendations.engine import fit  # noqa: E402
from recommendations.local import (  # noqa: E402
    default_config,
    load_event_data,
    loaded_model,
    published_version,
    realtime_apply,
    train_event_now,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--event", required=True)
    ap.add_argument("--updates", type=int, default=300)
    args = ap.parse_args()
    event = Event.objects.get(slug=args.event)
    if published_version(event=event) is None:
        t = time.perf_counter()
        train_event_now(event=event, trigger="benchmark")
        print(f"trained in {time.perf_counter() - t:.1f}s")
    version = published_version(event=event)
    loaded_model(version)  # load the artifact outside the timing, as a warm serving process has
    attendees = np.array(Attendee.objects.filter(event=event).values_list("pk", flat=True))
    rooms = np.array(Room.objects.filter(event=event).values_list("pk", flat=True))
    rng = np.random.default_rng(11)
    start = Interaction.objects.filter(event=event).count()
    times, rows, paths = [], [], []
    for i in range(args.updates):
        row = Interaction.objects.create(
            event=event,
            attendee_id=int(rng.choice(attendees)),
            room_id=int(rng.choice(rooms)),
            type="join_room",
            value=float(rng.integers(60, 3600)),
            occurred_at=datetime.now(tz=UTC),
            client_event_id=f"bench-rt-{start}-{i}",
            source="import",
            qualifies=True,
            processed_at=datetime.now(tz=UTC),
        )
        t = time.perf_counter()
        rows.append(realtime_apply(event_id=event.pk, interaction_ids=[row.pk]))
        times.append((time.perf_counter() - t) * 1000)
        paths.append(dict(loaded_model(version).model.last_update))
    ms = np.array(times[10:])  # the first calls compile the engine's small-batch kernels
    print(
        f"realtime_apply on {args.event} (v{version.number}), {ms.size} single interactions: "
        f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms; "
        f"attendees recomputed per update: median {int(np.median(rows))}, max {max(rows)}"
    )
    slowest = np.argsort(times)[::-1][: max(3, len(times) // 100)]
    print("slowest calls (ms, attendees recomputed, engine rows by path):")
    for i in slowest.tolist():
        print(f"  {times[i]:.1f} ms, {rows[i]} attendees, {paths[i]}")
    data = load_event_data(event=event)
    t = time.perf_counter()
    fit(data.inputs, default_config(event=event))
    print(f"peer: full refit of the same event (inputs in memory): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
