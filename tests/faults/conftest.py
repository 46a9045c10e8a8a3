"""Real processes for the fault tests: a Celery worker, an ASGI server, and throwaway Redis and
PostgreSQL servers that a test may stop and start without disturbing the shared ones."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.live import ROOT, free_port, server_env, stop

BIN = Path(sys.executable).parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def process_env(**overrides: str) -> dict:
    """A server or worker on the test database that sends its tasks to a real broker."""
    return server_env(CELERY_TASK_ALWAYS_EAGER="false", **overrides)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process and its children (a prefork worker's pool): no cleanup runs."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextmanager
def celery_worker(env: dict, name: str, log: Path):
    proc = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "matchmaking_site",
            "worker",
            "-Q",
            "celery,training",  # both queues (settings.CELERY_TASK_ROUTES)
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--hostname",
            f"{name}@%h",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop(proc)


def wait_for(condition, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@contextmanager
def throwaway_redis(port: int, *config: str):
    """A redis-server of its own on `port`; `config` goes first (a config file, `--sentinel`)."""
    proc = subprocess.Popen(
        ["redis-server", *config, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(
        lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG",
        timeout=10,
    )
    try:
        yield proc
    finally:
        stop(proc)


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (initdb into a temporary folder), run as the postgres user."""

    def __init__(self, base: Path, port: int):
        self.dir = base / "pgdata"
        self.port = port
        self.log = base / "postgres.log"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)

    def init(self) -> None:
        shutil.chown(self.dir.parent, "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "app"], check=True)

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.dir),
            "-l",
            str(self.log),
            "-w",
            "-o",
            f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/app"


@pytest.fixture
def throwaway_postgres():
    if PG_BIN is None or shutil.which("runuser") is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are needed for this test")
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="mm-faults-pg-"))
    pg = ThrowawayPostgres(base, free_port())
    try:
        pg.init()
        yield pg
    finally:
        with suppress(subprocess.CalledProcessError):
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)
