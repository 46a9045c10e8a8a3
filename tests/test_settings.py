"""Settings' failure modes and the three configurations (embedded, Redis, production).

Each case runs `manage.py` in a subprocess with a controlled environment: settings are read once
per process, so this is the only honest way to see what a given environment produces."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE']); print(s.CACHES['default']['BACKEND']); "
    "print(s.CHANNEL_LAYERS['default']['BACKEND']); print(s.CELERY_BROKER_URL); print(s.CELERY_TASK_ALWAYS_EAGER)"
)
CONFIG_VARS = {
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DEBUG",
    "CELERY_TASK_ALWAYS_EAGER",
    "CACHE_REDIS_URL",
    "LIVE_REDIS_URL",
    "CHANNEL_LAYER_REDIS_URL",
    "DATABASE_POOL",
    "DATABASE_PGBOUNCER",
}


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS and not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_default_needs_no_services():
    result = run_manage("shell", "-v", "0", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "channels.layers.InMemoryChannelLayer",
        "memory://",
        "True",
    ]


def test_redis_url_switches_cache_layer_and_broker():
    result = run_manage(
        "shell",
        "-v",
        "0",
        "-c",
        PROBE,
        REDIS_URL="redis://127.0.0.1:6379/5",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "matchmaking_site.cache.ResilientRedisCache",
        "matchmaking_site.layer.WaitingPoolRedisChannelLayer",
        "redis://127.0.0.1:6379/5",
        "False",
    ]


PGBOUNCER_PROBE = """
from django.db import connection
for i in range(8):  # psycopg prepares a query from its fifth run on a connection, by default
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::int", [i])
        cursor.fetchone()
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM pg_prepared_statements")
    d = connection.settings_dict
    print(cursor.fetchone()[0], d["CONN_MAX_AGE"], d.get("DISABLE_SERVER_SIDE_CURSORS", False), "pool" in d["OPTIONS"])
"""


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL, as `make test` and CI run"
)
@pytest.mark.parametrize("switch, expected", [("true", "0 0 True False"), ("false", "0 0 False False")])
def test_behind_pgbouncer_no_cursor_or_statement_outlives_a_transaction(switch, expected):
    """PgBouncer in transaction pooling hands each transaction any server connection: a server-side
    cursor (or a prepared statement) made on one is missing on the next. DATABASE_PGBOUNCER=true
    turns server-side cursors off (and the app's own pool: PgBouncer is the pool); a query run
    eight times prepares nothing either way, because Django binds parameters on the client."""
    result = run_manage(
        "shell",
        "-v",
        "0",
        "-c",
        PGBOUNCER_PROBE,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        DATABASE_PGBOUNCER=switch,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_without_required_variable_refuses_with_one_line(missing):
    env = {"DEBUG": "false", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "example.com"}
    del env[missing]
    result = run_manage("check", **env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {missing} must be set in the environment when DEBUG is false"
    ]


def test_production_settings_pass_deploy_checks():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="k" * 20 + "-Zq8#t0v!mW3xR7pLs2@YbN5cJ" * 2,
        ALLOWED_HOSTS="matchmaking.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not settings.REDIS_URL, reason="the suite runs with REDIS_URL in `make test` and CI")
def test_cache_talks_to_real_redis():
    import redis

    cache.set("settings-probe", {"n": 1}, timeout=30)
    assert cache.get("settings-probe") == {"n": 1}
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert any(b"settings-probe" in k for k in client.keys("*settings-probe*"))
    cache.delete("settings-probe")
