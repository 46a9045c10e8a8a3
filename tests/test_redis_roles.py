"""Each Redis role on its own URL, and Redis Sentinel for any of them: settings read in a fresh
process (they are read once), traffic checked on the Redis servers themselves."""

import json
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from matchmaking_site.redis_urls import Sentinel, broker_settings, channel_layer_host, parse_sentinel
from tests.faults.conftest import throwaway_redis
from tests.live import ROOT, free_port

# What a fresh process reports: each role's settings, a write through the cache API to each cache,
# a channel-layer round trip and the broker, as /readyz checks them.
PROBE = """
import json
from django.conf import settings
from django.core.cache import caches
from django.test import Client
caches["default"].set("role-probe", "cache", 60)
caches["live"].set("role-probe", "live", 60)
ready = Client().get("/readyz")
print(json.dumps({"status": ready.status_code, "checks": ready.json()["checks"],
                  "broker": settings.CELERY_BROKER_URL,
                  "options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                  "layer": settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]}, default=str))
"""


def _probe(env: dict, tmp_path) -> dict:
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path}/probe.sqlite3", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()


@contextmanager
def _redis(*config: str):
    """A throwaway redis-server on a free port; yields the port."""
    port = free_port()
    with throwaway_redis(port, *config):
        yield port


def test_sentinel_urls_parse_and_bad_ones_name_the_setting():
    assert parse_sentinel("redis://h:6379/0") is None
    assert parse_sentinel("sentinel://a:26380,b/mymaster/4") == Sentinel((("a", 26380), ("b", 26379)), "mymaster", 4)
    assert parse_sentinel("sentinel://:s%40cret@a:1/m").password == "s@cret"
    for bad in ("sentinel://a:1", "sentinel://a:x/m", "sentinel://a:1/m/0/extra", "sentinel://a:1/m/db"):
        with pytest.raises(ValueError, match=r"^CACHE_REDIS_URL: a Sentinel URL is"):
            parse_sentinel(bad, name="CACHE_REDIS_URL")
    assert channel_layer_host("sentinel://a:1/m/2", name="X") == {
        "sentinels": [("a", 1)],
        "master_name": "m",
        "socket_timeout": None,
        "db": 2,
    }
    assert broker_settings("sentinel://a:1,b:2/m/3", name="X") == (
        "sentinel://a:1/3;sentinel://b:2",
        {"master_name": "m"},
    )


def test_a_malformed_url_stops_start_up_with_one_line():
    run = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CHANNEL_LAYER_REDIS_URL": "sentinel://a:1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "error: CHANNEL_LAYER_REDIS_URL: a Sentinel URL is sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]"
        "/MASTER_NAME[/DB], got 'sentinel://a:1'"
    ]


def test_each_role_on_its_own_redis(tmp_path):
    with _redis() as cache, _redis() as live, _redis() as layer, _redis() as broker:
        out = _probe(
            {
                "CACHE_REDIS_URL": f"redis://127.0.0.1:{cache}/0",
                "LIVE_REDIS_URL": f"redis://127.0.0.1:{live}/0",
                "CHANNEL_LAYER_REDIS_URL": f"redis://127.0.0.1:{layer}/0",
                "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker}/0",
                "CELERY_TASK_ALWAYS_EAGER": "false",
            },
            tmp_path,
        )
        assert out["status"] == 200, out
        assert "Broker()" in out["checks"]
        assert _cli(cache, "exists", "mm:1:role-probe") == "1"
        assert _cli(live, "exists", "mm:1:role-probe") == "1"
        assert _cli(layer, "exists", "mm:1:role-probe") == "0"  # the caches wrote nowhere else
        assert _cli(broker, "dbsize") == "0"


def test_every_role_through_a_real_sentinel(tmp_path):
    with _redis() as master:
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"sentinel monitor mymaster 127.0.0.1 {master} 1\nsentinel down-after-milliseconds mymaster 5000\n"
        )
        with _redis(str(conf), "--sentinel") as sentinel:
            deadline = time.monotonic() + 10
            while str(master) not in _cli(sentinel, "sentinel", "get-master-addr-by-name", "mymaster"):
                assert time.monotonic() < deadline, "the sentinel does not know the master"
                time.sleep(0.1)
            base = f"sentinel://127.0.0.1:{sentinel}/mymaster"
            out = _probe(
                {
                    "CACHE_REDIS_URL": f"{base}/5",
                    "LIVE_REDIS_URL": f"{base}/6",
                    "CHANNEL_LAYER_REDIS_URL": f"{base}/7",
                    "CELERY_BROKER_URL": f"{base}/8",
                    "CELERY_TASK_ALWAYS_EAGER": "false",
                },
                tmp_path,
            )
        # the writes reached the master the sentinel named, in each role's database
        assert _cli(master, "-n", "5", "exists", "mm:1:role-probe") == "1"
        assert _cli(master, "-n", "6", "exists", "mm:1:role-probe") == "1"
    assert out["status"] == 200, out
    assert set(out["checks"].values()) == {"ok"}
    assert out["broker"] == f"sentinel://127.0.0.1:{sentinel}/8"
    assert out["options"]["master_name"] == "mymaster"
    assert out["layer"]["master_name"] == "mymaster" and out["layer"]["db"] == 7
