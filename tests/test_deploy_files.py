"""The deployment files are checked here for syntax and for agreement with the app: Docker is
not available on this machine, so `docker compose config` cannot run; what it would catch first
(a YAML error, a service without a command, a process the Procfile runs but compose does not) is
checked instead."""

import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name] = shlex.split(command)
    return entries


def test_compose_parses_with_every_role_and_its_dependencies():
    services = compose()["services"]
    assert set(services) == {"migrate", "web", "worker", "beat", "postgres", "redis"}
    for name in ("migrate", "web", "worker", "beat"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert set(services["migrate"]["depends_on"]) == {"postgres", "redis"}
    for name in ("web", "worker", "beat"):  # they start on a migrated schema
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["beat"]["deploy"]["replicas"] == 1


def test_compose_runs_the_same_programs_as_the_procfile():
    services = compose()["services"]
    programs = {tuple(cmd[:1] + cmd[1:4]) for cmd in procfile().values()}
    assert tuple(services["web"]["command"][:1]) == ("uvicorn",)
    assert services["web"]["command"][1] == procfile()["web"][1] == "matchmaking_site.asgi:application"
    assert ("celery", "-A", "matchmaking_site", "worker") in programs
    assert services["worker"]["command"][:4] == ["celery", "-A", "matchmaking_site", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "matchmaking_site", "beat"]


def test_dockerfile_installs_the_pinned_requirements_and_runs_unprivileged():
    lines = [line.strip() for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()]
    instructions = [line.split()[0] for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM"
    assert "COPY requirements.txt ." in lines
    assert "RUN pip install -r requirements.txt" in lines
    assert "USER app" in lines
    assert lines[-1].startswith("CMD [")


def test_the_image_collects_static_files_as_production_serves_them_and_takes_no_local_state():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    collect = next(line for line in dockerfile.splitlines() if "collectstatic" in line)
    assert "DEBUG=false" in collect  # the manifest storage writes its manifest only then
    assert "chown -R app /app/var" in dockerfile and "/app/var/models" in dockerfile
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".env", "*.sqlite3", ".git", "staticfiles/"} <= ignored
    example = (ROOT / "deploy" / "env.example").read_text()
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD"):
        assert f"{name}=" in example
