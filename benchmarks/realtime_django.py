"""Real-time update through Django: one new qualifying interaction -> `realtime_apply` (read the
row, update the live model, recompute the touched attendees, write their lists to the shared
cache), timed end to end on a simulated event, next to a full retrain of the same event.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python manage.py simulate_event --size M --slug sim-m
    DATABASE_URL=postgres://... REDIS_URL=redis://... python benchmarks/realtime_django.py --event sim-m [--updates 300]
    DATABASE_URL=postgres://... REDIS_URL=redis://... python benchmarks/realtime_django.py --event sim-m --catch-up 5000

The script trains the event first if it has no published version, and adds `--updates` synthetic
room visits (marked `bench-rt-*`) to it. With `--catch-up N` it instead adds N visits without
applying them and times the first call of a process that starts afresh: it catches up on every
interaction since training (a worker restarted mid-event), next to the peer a retrain would be.
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
from recommendations.backends.local import realtime  # noqa: E402
from recommendations.backends.local.fit import default_config, train_event_now  # noqa: E402
from recommendations.backends.local.inputs import load_event_data  # noqa: E402
from recommendations.backends.local.loaded import forget_loaded_models, loaded_model, published_version  # noqa: E402
from recommendations.backends.local.realtime import realtime_apply  # noqa: E402
from recommendations.engine import fit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--event", required=True)
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--catch-up", type=int, default=0, help="time a fresh process catching up on N new visits")
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
    if args.catch_up:
        catch_up(event, version, attendees, rooms, rng, start, args.catch_up)
        return
    times, rows, paths = [], [], []
    for i in range(args.updates):
        row = visit(event, attendees, rooms, rng, f"bench-rt-{start}-{i}")
        row.save()
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


def visit(event, attendees, rooms, rng, client_event_id: str) -> Interaction:
    """A qualifying room visit of a random attendee (not saved)."""
    return Interaction(
        event=event,
        attendee_id=int(rng.choice(attendees)),
        room_id=int(rng.choice(rooms)),
        type="join_room",
        value=float(rng.integers(60, 3600)),
        occurred_at=datetime.now(tz=UTC),
        client_event_id=client_event_id,
        source="import",
        qualifies=True,
        processed_at=datetime.now(tz=UTC),
    )


def catch_up(event, version, attendees, rooms, rng, start: int, n: int) -> None:
    """Add n visits nobody applied, then time the first `realtime_apply` of a fresh process."""
    rows = Interaction.objects.bulk_create(
        [visit(event, attendees, rooms, rng, f"bench-cu-{start}-{i}") for i in range(n)]
    )
    forget_loaded_models()
    loaded = loaded_model(version)  # the artifact is loaded outside the timing, as above
    behind = Interaction.objects.filter(event=event, qualifies=True, pk__gt=loaded.trained_upto).count()
    marks = {}
    render = realtime.render_pair_reasons

    def timed_render(*a, **kw):  # the lists of a large batch are out when the explaining starts
        marks["explain"] = time.perf_counter()
        return render(*a, **kw)

    realtime.render_pair_reasons = timed_render
    t = time.perf_counter()
    recomputed = realtime_apply(event_id=event.pk, interaction_ids=[rows[-1].pk])
    took = time.perf_counter() - t
    realtime.render_pair_reasons = render
    print(
        f"fresh process, first call on {event.slug} (v{version.number}): caught up on {behind} interactions "
        f"since training in {took:.2f} s ({recomputed} attendees recomputed; engine rows by path: "
        f"{loaded.model.last_update}); the new lists were out after {marks['explain'] - t:.2f} s, "
        f"explaining the changed pairs and writing their reasons took the rest"
    )
    after = []
    for i in range(3):  # the first one loads the single-row kernels the catch-up did not use
        row = visit(event, attendees, rooms, rng, f"bench-cu-{start}-{n + i}")
        row.save()
        t = time.perf_counter()
        realtime_apply(event_id=event.pk, interaction_ids=[row.pk])
        after.append(f"{(time.perf_counter() - t) * 1000:.1f}")
    print(f"the next three calls: {', '.join(after)} ms")
    data = load_event_data(event=event)
    t = time.perf_counter()
    fit(data.inputs, default_config(event=event))
    print(f"peer: full refit of the same event (inputs in memory): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
