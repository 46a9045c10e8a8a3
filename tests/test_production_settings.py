"""The image's production settings, driven as its probe and its users would (Docker is not run
here, so the image's own steps are: its collectstatic line, its server command, the compose
file's healthcheck command, all read from the deploy files).

Before: collectstatic ran with DEBUG=true, so no manifest was written and `/admin/login/` answered
500 under the manifest storage; the healthcheck's request to `127.0.0.1:8000` got 400 (not an
allowed host) or 301 (not HTTPS)."""

import asyncio
import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import time

import pytest
import yaml
from django.conf import settings

from events.services import api_key_create
from tests.factories import OrganizationFactory
from tests.live import ROOT, current_database_url, free_port, stop

pytestmark = pytest.mark.slow

HOST = "app.example.com"
HTTPS = {"Host": HOST, "X-Forwarded-Proto": "https"}  # what the TLS-terminating proxy sends


def _dockerfile_run(word: str) -> str:
    line = next(
        x for x in (ROOT / "deploy" / "Dockerfile").read_text().splitlines() if x.startswith("RUN ") and word in x
    )
    return line.removeprefix("RUN ")


def _dockerfile_cmd() -> list[str]:
    line = next(x for x in (ROOT / "deploy" / "Dockerfile").read_text().splitlines() if x.startswith("CMD "))
    return json.loads(line.removeprefix("CMD "))


def _get(port: int, path: str, headers: dict) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def production(settled_db, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env |= {
        "DEBUG": "false",
        "SECRET_KEY": "a-production-secret-for-this-test-only-0123456789abcdef",
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": current_database_url(),
        "STATIC_ROOT": str(tmp_path / "static"),
        "CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": "memory://",
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",  # the image's `python`
    }
    # the image's build step, as written (its inline DEBUG, secret and hosts win over ours)
    subprocess.run(["sh", "-c", _dockerfile_run("collectstatic")], env=env, cwd=ROOT, check=True)
    cmd = _dockerfile_cmd()
    assert cmd[0] == "uvicorn" and "--host" in cmd and "--port" in cmd
    port = free_port()
    args = cmd[1:]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    args[args.index("--workers") + 1] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *args], cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(port, "/healthz", HTTPS)  # any answer: the server is up (the test judges it)
                break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"uvicorn did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        yield port
    finally:
        stop(proc)


def test_the_image_s_settings_serve_the_probe_the_admin_the_api_and_a_websocket(production):
    port = production
    # 1. the compose file's healthcheck, exactly, against this port
    healthcheck = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())["services"]["web"]["healthcheck"]
    assert healthcheck["test"][:2] == ["CMD", "python"]
    probe = [sys.executable, *[part.replace("8000", str(port)) for part in healthcheck["test"][2:]]]
    assert subprocess.run(probe, capture_output=True, timeout=30).returncode == 0, shlex.join(probe)

    # 2. the admin's sign-in page, with its static files from the manifest
    status, _, body = _get(port, "/admin/login/", HTTPS)
    assert status == 200, body[:500]
    css = re.search(rb"/static/admin/css/base\.[0-9a-f]{12}\.css", body)
    assert css is not None
    assert _get(port, css.group().decode(), HTTPS)[0] == 200
    status, headers, _ = _get(port, "/admin/login/", {"Host": HOST})  # plain HTTP: to HTTPS
    assert (status, headers["location"]) == (301, f"https://{HOST}/admin/login/")

    # 3. the API with a platform's key
    organization = OrganizationFactory()
    _, secret = api_key_create(organization=organization, name="platform")
    status, _, body = _get(port, "/api/v1/events/", {**HTTPS, "Authorization": f"Api-Key {secret}"})
    assert status == 200 and "results" in json.loads(body)

    # 4. a WebSocket from the site's own origin
    import websockets

    async def ping() -> dict:
        async with websockets.connect(
            f"ws://{HOST}:{port}/ws/ping/", host="127.0.0.1", port=port, origin=f"https://{HOST}"
        ) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    assert asyncio.run(ping())["type"] == "pong"
    assert settings.ALLOWED_HOSTS != [HOST]  # the test process itself runs the test settings
