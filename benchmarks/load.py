"""A production-like load run on this machine, in one command: `make load` (or
`python benchmarks/load.py --seconds 30`).

It starts the Procfile's processes (two uvicorn ASGI workers, two Celery workers, beat) with
production settings (DEBUG=false) against PostgreSQL and Redis, seeds the demo event and trains its
model, then drives at the same time:

- the recommendations endpoint at a fixed 500 requests/s (`hey`, 10 clients x 50 req/s, each
  client one attendee: a warm cache; `--warmup` seconds at that rate first, not measured), and then
  at full speed rotating over every attendee (`wrk`);
- the ingestion endpoint beside them at a fixed rate (`--ingest-rate` batches of 50 room visits
  with unique ids per second, from a thread of this script), so that ingestion is real but does not
  starve the endpoint under test of the machine's two cores.

It prints requests/s, p50, p99 and the error count of each, and the target: recommendations p99
under 50 ms at 500 requests/s with zero errors; and, as the peer in the same run, the same uvicorn
serving a fixed body with no Django (`benchmarks/bare_asgi.py`) at the same fixed rate: the
machine's HTTP floor. Everything runs on loopback and stops by itself.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TARGET_P99_MS = 50.0
TARGET_RPS = 500


def sh(*args: str, env: dict, check: bool = True, capture: bool = True) -> str:
    result = subprocess.run(args, cwd=ROOT, env=env, text=True, capture_output=capture, check=False)
    if check and result.returncode != 0:
        sys.exit(f"load: {' '.join(args)} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout if capture else ""


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"load: {url} did not answer within {timeout:.0f} s")


def parse_hey(output: str) -> dict:
    def pct(p: int) -> float:
        m = re.search(rf"\s{p}% in ([\d.]+) secs", output)
        if m:
            return float(m.group(1)) * 1000
        # hey leaves out percentiles it has too few samples for; the slowest bounds them all.
        slowest = re.search(r"Slowest:\s+([\d.]+) secs", output)
        return float(slowest.group(1)) * 1000 if slowest else float("nan")

    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", output)}
    errors = (
        sum(int(n) for n in re.findall(r"\[(\d+)\]\s+\S.*", output.split("Error distribution:")[-1]))
        if ("Error distribution:" in output)
        else 0
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": pct(50),
        "p99": pct(99),
        "ok": sum(n for code, n in statuses.items() if 200 <= code < 300),
        "errors": errors + sum(n for code, n in statuses.items() if code >= 400),
    }


def parse_wrk(output: str) -> dict:
    def ms(p: int) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", output)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": ms(50),
        "p99": ms(99),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0),
    }


def ingest_at_rate(base: str, key: str, rate: float, seconds: float, attendees: int) -> dict:
    """POST `rate` batches of 50 unique room visits per second for `seconds`; latencies in ms."""
    latencies: list[float] = []
    errors = 0
    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) - start < seconds:
        due = start + n * interval
        if now < due:
            time.sleep(due - now)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        items = [
            {
                "client_event_id": f"load-{os.getpid()}-{n}-{i}",
                "attendee_id": f"att-{(n * 50 + i) * 7919 % attendees + 1:04d}",
                "context_kind": "room",
                "context_id": f"room-{(n * 50 + i) * 31 % 20 + 1:02d}",
                "type": "join_room",
                "value": 60 + (n + i) % 900,
                "occurred_at": stamp,
            }
            for i in range(50)
        ]
        request = urllib.request.Request(
            f"{base}/api/v1/events/demo/interactions/",
            data=json.dumps({"interactions": items}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
        )
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                ok = response.status == 200
        except OSError:
            ok = False
        latencies.append((time.monotonic() - t0) * 1000)
        errors += 0 if ok else 1
        n += 1
    latencies.sort()
    elapsed = time.monotonic() - start

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    return {"rps": n / elapsed, "p50": pct(0.50), "p99": pct(0.99), "errors": errors}


def hey_fixed_rate(urls: list[str], seconds: int, headers: list[str]) -> list[dict]:
    """One `hey` client per URL, each at TARGET_RPS / len(urls) requests/s, all at once."""
    clients = [
        subprocess.Popen(
            ["hey", "-z", f"{seconds}s", "-c", "1", "-q", str(TARGET_RPS // len(urls)), *headers, url],
            text=True,
            stdout=subprocess.PIPE,
        )
        for url in urls
    ]
    return [parse_hey(p.communicate()[0]) for p in clients]


def summary(results: list[dict]) -> dict:
    """Fixed-rate clients together: summed rate, worst p50 / p99 of the clients, summed errors."""
    return {
        "rps": sum(r["rps"] for r in results),
        "p50": max(r["p50"] for r in results),
        "p99": max(r["p99"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "ok": sum(r["ok"] for r in results),
    }


def bare_asgi_floor(port: int, seconds: int, env: dict) -> dict:
    """The peer, in the same run: uvicorn with the Procfile's two workers serving a fixed body
    (`benchmarks/bare_asgi.py`, no Django), driven like the endpoint under test."""
    server = subprocess.Popen(
        [
            str(Path(PY).parent / "uvicorn"),
            "benchmarks.bare_asgi:app",
            *("--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/")
        return summary(hey_fixed_rate([f"http://127.0.0.1:{port}/?c={i}" for i in range(10)], seconds, []))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30, help="Duration of each load phase.")
    parser.add_argument("--warmup", type=int, default=5, help="Seconds at the fixed rate before measuring.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/matchmaking_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--attendees", type=int, default=300)
    parser.add_argument("--ingest-rate", type=float, default=4.0, help="Ingestion batches (of 50) per second.")
    args = parser.parse_args()

    dbname = args.database_url.rsplit("/", 1)[1]
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", dbname], capture_output=True, check=False)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "DEBUG": "false",
        "SECRET_KEY": "load-run-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "THROTTLE_INGEST": "1000000/min",
        "THROTTLE_ATTENDEE": "1000000/min",
        "DATABASE_POOL": "true",
        "LOG_LEVEL": "WARNING",
        "PORT": str(args.port),
        "PATH": f"{Path(PY).parent}:{os.environ.get('PATH', '')}",
    }
    print("load: migrating, seeding the demo event, training its model ...", flush=True)
    sh(PY, "manage.py", "migrate", "--noinput", "-v", "0", env=env)
    sh(PY, "manage.py", "seed_demo", "--reset", "--attendees", str(args.attendees), "-v", "0", env=env)
    sh(PY, "manage.py", "train", "--event", "demo", env=env)
    sh(PY, "manage.py", "collectstatic", "--noinput", "-v", "0", env=env)
    api_key = sh(PY, "manage.py", "create_api_key", "--organization", "demo-org", "--name", "load", env=env).strip()
    subprocess.run(["redis-cli", "-u", args.redis_url, "FLUSHDB"], capture_output=True, check=False)

    procs = subprocess.Popen(
        [str(Path(PY).parent / "honcho"), "start", "-f", "Procfile"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_healthy(f"{base}/healthz")
        rec = "/api/v1/events/demo/attendees/att-{:04d}/recommendations/"
        auth = f"Authorization: Api-Key {api_key}"
        for i in range(1, 11):  # warm the ten fixed clients' lists
            urllib.request.urlopen(urllib.request.Request(base + rec.format(i), headers={"Authorization": auth[15:]}))

        ingest_result: dict = {}
        ingest = threading.Thread(
            target=lambda: ingest_result.update(
                ingest_at_rate(base, api_key, args.ingest_rate, args.warmup + args.seconds * 2 + 2, args.attendees)
            )
        )
        ingest.start()
        urls = [base + rec.format(i) for i in range(1, 11)]
        # Warm-up at the same rate, not measured: each uvicorn process's first requests (imports,
        # connections, the engine's compiled kernels) are start-up, not steady state.
        hey_fixed_rate(urls, args.warmup, ["-H", auth])
        fixed = summary(hey_fixed_rate(urls, args.seconds, ["-H", auth]))
        rotate = ROOT / "var" / "load_rotate.lua"
        rotate.parent.mkdir(parents=True, exist_ok=True)
        path = rec.replace("{:04d}", "%04d")
        rotate.write_text(
            f'local n = 0\nwrk.headers["Authorization"] = "Api-Key {api_key}"\n'
            f"function request()\n  n = n + 1\n"
            f'  return wrk.format("GET", string.format("{path}", n % {args.attendees} + 1))\nend\n'
        )
        saturate = parse_wrk(
            subprocess.run(
                ["wrk", "-t2", "-c16", f"-d{args.seconds}s", "--latency", "-s", str(rotate), base],
                text=True,
                capture_output=True,
                check=False,
            ).stdout
        )
        ingest.join()
    finally:
        os.killpg(procs.pid, signal.SIGTERM)
        try:
            procs.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(procs.pid, signal.SIGKILL)

    print("load: the peer, a bare ASGI app under the same uvicorn (no Django) ...", flush=True)
    peer = bare_asgi_floor(args.port + 1, args.seconds, env)
    total, p50, p99, errors, rps = fixed["ok"], fixed["p50"], fixed["p99"], fixed["errors"], fixed["rps"]
    print()
    print(f"{'phase':<52} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(f"{'recommendations, fixed 500 req/s (hey, 10 clients)':<52} {rps:>9.1f} {p50:>8.1f} {p99:>8.1f} {errors:>7}")
    print(
        f"{'recommendations, full speed over all attendees (wrk)':<52} {saturate['rps']:>9.1f} "
        f"{saturate['p50']:>8.1f} {saturate['p99']:>8.1f} {saturate['errors']:>7}"
    )
    print(
        f"{'ingestion beside both, 50-item batches (fixed rate)':<52} {ingest_result['rps']:>9.1f} "
        f"{ingest_result['p50']:>8.1f} {ingest_result['p99']:>8.1f} {ingest_result['errors']:>7}"
        f"   = {ingest_result['rps'] * 50:.0f} interactions/s"
    )
    print(
        f"{'peer: bare ASGI app, same uvicorn, fixed 500 req/s':<52} {peer['rps']:>9.1f} "
        f"{peer['p50']:>8.1f} {peer['p99']:>8.1f} {peer['errors']:>7}   (alone: no Django, no ingestion)"
    )
    print(f"(fixed-rate p50/p99 are the worst of the ten clients; {total} successful requests)")
    verdict = "met" if p99 < TARGET_P99_MS and errors == 0 and rps >= TARGET_RPS * 0.95 else "NOT met"
    print(f"target: recommendations p99 < {TARGET_P99_MS:.0f} ms at {TARGET_RPS} req/s with 0 errors: {verdict}")


if __name__ == "__main__":
    main()
