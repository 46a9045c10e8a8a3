"""One presence change in a room of N open pages, through the real channel layer (channels_redis):
the change as itself (this product: `events.presence`, `room.presence`) against the room's whole
list to everyone (what it sent before, `room.occupants`), in the same run.

    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python benchmarks/presence_fanout.py [--sizes 100 500 1000]

For each N: the bytes of one message and what the N sockets are sent (N copies); what crossed
Redis's network (its INFO counters); the wall time from group_send until the last of the N
consumers' channels holds its copy (median of 5 changes); and the CPU the consumers then spend
encoding their copies for their sockets (send_json, once per page). channels_redis carries a
group message once per receiving process, not once per page, so Redis is not where the whole
list hurt: the sockets and the encoding are, both N times the list per change. The whole list
grows as N per copy, so as N squared per change; the change is the same size in any room.
Needs Redis (the in-memory layer would measure nothing but Python).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid

from channels_redis.core import RedisChannelLayer


def person(i: int) -> dict:
    return {"external_id": f"att-{i:06d}", "display_name": f"Attendee Number {i}"}


def _redis_traffic() -> int:
    """Bytes Redis has received and sent so far (INFO stats): what actually crossed the network."""
    import redis

    info = redis.Redis.from_url(os.environ["REDIS_URL"]).info("stats")
    return int(info["total_net_input_bytes"]) + int(info["total_net_output_bytes"])


async def one_size(layer: RedisChannelLayer, n: int, repeats: int) -> dict[str, tuple[int, float, float, float]]:
    group = f"bench.room.{uuid.uuid4().hex[:8]}"
    channels = [await layer.new_channel() for _ in range(n)]
    for ch in channels:
        await layer.group_add(group, ch)
    people = [person(i) for i in range(n)]
    messages = {
        "the change (room.presence)": {"type": "room.presence", "joined": person(n), "count": n + 1},
        "the whole list (room.occupants)": {"type": "room.occupants", "people": [*people, person(n)]},
    }
    out = {}
    for name, message in messages.items():
        times = []
        traffic = _redis_traffic()
        for _ in range(repeats):
            started = time.perf_counter()
            await layer.group_send(group, message)
            got = await asyncio.gather(*(layer.receive(ch) for ch in channels))
            times.append(time.perf_counter() - started)
            assert all(m["type"] == message["type"] for m in got)
        through = (_redis_traffic() - traffic) / repeats
        # What each page's consumer then does with its copy: send_json encodes it for its socket.
        started = time.perf_counter()
        for m in got:
            json.dumps(m)
        encode = time.perf_counter() - started
        out[name] = (len(json.dumps(message).encode()), statistics.median(times), through, encode)
    for ch in channels:
        await layer.group_discard(group, ch)
    return out


async def main(sizes: list[int], repeats: int) -> None:
    url = os.environ.get("REDIS_URL")
    if not url:
        sys.exit("REDIS_URL is required: the benchmark measures the Redis channel layer")
    # The product's settings for the layer, with room for one message per page per change.
    layer = RedisChannelLayer(hosts=[{"address": url}], prefix="bench", capacity=max(sizes) * 2)
    print(
        f"{'pages':>6}  {'message':32s} {'bytes':>9} {'to sockets':>13} {'via Redis':>10} "
        f"{'layer p50':>10} {'encoding':>9}"
    )
    for n in sizes:
        result = await one_size(layer, n, repeats)
        for name, (size, seconds, through, encode) in result.items():
            print(
                f"{n:6d}  {name:32s} {size:9,d} {size * n:13,d} {through:10,.0f} "
                f"{seconds * 1000:7.1f} ms {encode * 1000:6.1f} ms"
            )
        (small, t_small, r_small, e_small), (big, t_big, r_big, e_big) = result.values()
        print(
            f"{'':6}  whole list / change: {big / small:.0f}x the bytes to the sockets, {r_big / r_small:.1f}x "
            f"via Redis, {t_big / t_small:.1f}x the layer's time, {e_big / e_small:.0f}x the encoding"
        )
    await layer.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.repeats))
