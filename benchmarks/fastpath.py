"""The short way against Django's full path for the same warm request, in one process, same run.

    REDIS_URL=redis://127.0.0.1:6379/6 DATABASE_URL=sqlite:////tmp/fastpath-bench.sqlite3 \
        .venv/bin/python benchmarks/fastpath.py [--requests 2000]

Seeds the demo event on that database when it has none, issues an API key, warms the caches with
two requests per attendee, then times `GET .../attendees/{id}/recommendations/` over the demo's
attendees through the site's ASGI application (asgiref's ApplicationCommunicator: no sockets, so
the figures are the application's own cost): with the short way (`API_FAST_PATH`, which since
issue 17 runs Django's whole middleware chain around its answer) and without it (URL resolution,
DRF's request, authentication, permissions, negotiation and response: Django's full path, the
named peer). Prints requests/s and p50/p99 of each, and their ratio. Both answers are checked
equal (but for `cached`) before timing.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "matchmaking_site.settings")

import django

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from asgiref.testing import ApplicationCommunicator  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from events.models import Attendee, Event  # noqa: E402
from events.services import api_key_create  # noqa: E402
from matchmaking_site.asgi import application  # noqa: E402


@async_to_sync
async def get(path: str, secret: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"authorization", f"Api-Key {secret}".encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("localhost", 80),
    }
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await app.receive_output(10)
    body = b""
    while True:
        part = await app.receive_output(10)
        body += part.get("body", b"")
        if not part.get("more_body"):
            break
    await app.wait(10)
    return start["status"], body


def timed(paths: list[str], secret: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        status, _ = get(paths[i % len(paths)], secret)
        out.append((time.perf_counter() - t) * 1000)
        assert status == 200
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    if not Event.objects.filter(slug="demo").exists():
        call_command("seed_demo", verbosity=0)
    event = Event.objects.get(slug="demo")
    _, secret = api_key_create(organization=event.organization, name="fastpath benchmark")
    ids = list(Attendee.objects.filter(event=event).order_by("pk").values_list("external_id", flat=True)[:200])
    paths = [f"/api/v1/events/demo/attendees/{x}/recommendations/" for x in ids]
    for p in paths:  # Django fills the key, caller and list entries
        get(p, secret), get(p, secret)
    with override_settings(API_FAST_PATH=False):
        slow = json.loads(get(paths[0], secret)[1])
    fast = json.loads(get(paths[0], secret)[1])
    # the same answer (whether the list came from the cache is the one field that may differ)
    assert {**fast, "cached": None} == {**slow, "cached": None}, "the two answers differ"
    rows = []
    for label, fast in (("short way (middleware + serving)", True), ("Django's full path (peer)", False)):
        with override_settings(API_FAST_PATH=fast):
            timed(paths, secret, 200)  # warm
            ms = timed(paths, secret, args.requests)
        rows.append((label, len(ms) / (sum(ms) / 1000), statistics.median(ms), sorted(ms)[int(0.99 * len(ms)) - 1]))
    print(f"{len(paths)} attendees of the demo event, {args.requests} warm requests each way, in process")
    for label, rps, p50, p99 in rows:
        print(f"  {label:<34} {rps:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    print(f"  short way / full path: {rows[0][1] / rows[1][1]:.2f}x the requests per second")


if __name__ == "__main__":
    main()
