"""Behind a reverse proxy, the login rate limit counts each client, not the proxy: uvicorn (the
production server, as the Procfile runs it) believes X-Forwarded-For from the addresses in
FORWARDED_ALLOW_IPS, which the deploy files set. Without that, every user behind the proxy shares
one bucket, and one attacker locks everyone out."""

import subprocess
import sys
import time
import urllib.parse
from contextlib import contextmanager

import pytest
from django.core.cache import cache

from tests.live import ROOT, free_port, http, server_env, stop

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def uvicorn(forwarded_allow_ips: str, log):
    port = free_port()
    env = server_env(LOGIN_RATE_LIMIT="2", FORWARDED_ALLOW_IPS=forwarded_allow_ips)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "matchmaking_site.asgi:application", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while http("GET", f"{base}/livez", timeout=2)[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)
        yield base
    finally:
        stop(proc)


def _login(base: str, client_address: str, n: int) -> int:
    """A failed login from `client_address` (as the proxy reports it), a new username each time so
    that only the address's bucket counts."""
    body = urllib.parse.urlencode({"username": f"nobody-{client_address}-{n}", "password": "wrong"}).encode()
    status, _ = http(
        "POST",
        f"{base}/admin/login/",
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": client_address},
    )
    return status


@pytest.mark.parametrize(
    "trusted, second_client, net",
    [("127.0.0.1", "counted apart", 1), ("10.255.255.1", "shares the proxy's bucket", 2)],  # own addresses
)
def test_the_login_limit_counts_each_client_behind_a_trusted_proxy(tmp_path, trusted, second_client, net):
    cache.clear()  # the counters live in the cache: the server's is this process's Redis, if any
    with uvicorn(trusted, tmp_path / "uvicorn.log") as base:
        first = [_login(base, f"203.0.{net}.7", n) for n in range(3)]
        other = _login(base, f"198.51.{net}.9", 0)
    assert first == [403, 403, 429]  # refused (no CSRF token), then over the limit of 2 per window
    if second_client == "counted apart":
        assert other == 403
    else:  # the proxy (127.0.0.1 here) is not trusted: both clients are the proxy's address
        assert other == 429
