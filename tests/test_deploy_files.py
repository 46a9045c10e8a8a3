"""The deployment files are checked here for syntax and for agreement with the app: Docker is
not available on this machine, so `docker compose config` cannot run; what it would catch first
(a YAML error, a service without a command, a process the Procfile runs but compose does not) is
checked instead."""

import shlex
from pathlib import Path

import pytest
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
    assert set(services) == {"migrate", "web", "worker", "trainer", "beat", "postgres", "redis"}
    for name in ("migrate", "web", "worker", "trainer", "beat"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert set(services["migrate"]["depends_on"]) == {"postgres", "redis"}
    for name in ("web", "worker", "trainer", "beat"):  # they start on a migrated schema
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


def test_dockerfile_installs_the_locked_requirements_and_runs_unprivileged():
    lines = [line.strip() for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()]
    instructions = [line.split()[0] for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM"
    assert "COPY requirements.lock ." in lines
    assert "RUN pip install --require-hashes -r requirements.lock" in lines
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


def _queues(command: list[str]) -> set[str]:
    return set(command[command.index("-Q") + 1].split(",")) if "-Q" in command else {"celery"}


def test_every_queue_the_app_routes_to_has_a_worker_in_each_deploy_and_training_is_apart():
    """Trainings go to their own queue (settings.CELERY_TASK_ROUTES): a deploy with no worker on
    it would never train, and one whose quick workers also took trainings would delay pushes."""
    from django.conf import settings

    from matchmaking_site.celery import app

    routed = {app.amqp.router.route({}, name)["queue"].name for name in settings.TRAINING_TASKS}
    assert routed == {settings.CELERY_TRAINING_QUEUE} == {"training"}
    assert app.amqp.router.route({}, "events.process_interactions")["queue"].name == "celery"
    quick = {"celery"}
    services = compose()["services"]
    compose_workers = [s["command"] for s in services.values() if s.get("command", [])[3:4] == ["worker"]]
    proc_workers = [cmd for cmd in procfile().values() if cmd[:4] == ["celery", "-A", "matchmaking_site", "worker"]]
    for workers in (compose_workers, proc_workers):
        consumed = [_queues(cmd) for cmd in workers]
        assert set().union(*consumed) == quick | routed
        assert all(q in (quick, routed) for q in consumed)  # no worker mixes the two


K8S = ROOT / "deploy" / "k8s"


def k8s_documents() -> dict[str, list[dict]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def _validate(doc: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_every_kubernetes_manifest_is_valid_against_the_schemas():
    """kubernetes-validate, strict: unknown fields are errors (what `kubectl apply` would refuse)."""
    docs = k8s_documents()
    assert {d["kind"] for ds in docs.values() for d in ds} == {"ConfigMap", "Secret", "Job", "Deployment", "Service"}
    for doc in (d for ds in docs.values() for d in ds):
        _validate(doc)  # raises kubernetes_validate.ValidationError naming the field
    # ... and the check can fail: a misspelt field is refused
    import kubernetes_validate

    broken = yaml.safe_load(yaml.safe_dump(docs["web.yaml"][0]).replace("containerPort", "containerport"))
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


def test_kubernetes_runs_the_procfiles_programs_with_each_queue_and_one_beat():
    from matchmaking_site.health import LIVE_PATH, READY_PATH

    docs = k8s_documents()
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == set(docs) - {"secret.example.yaml"}
    deployments = {d["metadata"]["name"]: d for ds in docs.values() for d in ds if d["kind"] == "Deployment"}
    assert set(deployments) == {"matchmaking-web", "matchmaking-worker", "matchmaking-trainer", "matchmaking-beat"}

    def container(name):
        return deployments[name]["spec"]["template"]["spec"]["containers"][0]

    web = container("matchmaking-web")
    assert web["command"][:2] == procfile()["web"][:2] == ["uvicorn", "matchmaking_site.asgi:application"]
    assert web["readinessProbe"]["httpGet"]["path"] == READY_PATH
    assert web["livenessProbe"]["httpGet"]["path"] == LIVE_PATH
    assert _queues(container("matchmaking-worker")["command"]) == {"celery"}
    assert _queues(container("matchmaking-trainer")["command"]) == {"training"}
    beat = deployments["matchmaking-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    assert container("matchmaking-beat")["command"][:4] == ["celery", "-A", "matchmaking_site", "beat"]
    (job,) = docs["migrate.yaml"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "manage.py",
        "migrate",
        "--noinput",
    ]
    for deployment in deployments.values():  # every pod waits for the schema
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert "manage.py migrate --check" in init["command"][-1]


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (extras dropped, names normalised)."""
    import re

    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line.strip())
        if m:
            out[re.sub(r"[-_.]+", "-", m[1]).lower()] = m[2]
    return out


def test_the_locks_hold_every_pin_of_the_requirements_and_hash_every_package():
    """requirements*.txt name what the product uses; the locks (pip-compile, `make lock`) add
    every transitive package with its hashes. A pin changed in a .txt without `make lock` fails
    here, before an install can drift."""
    runtime, dev = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-dev.lock")
    for txt, lock in (("requirements.txt", runtime), ("requirements-dev.txt", dev)):
        wanted = _pins(ROOT / txt)
        assert {name: lock.get(name) for name in wanted} == wanted, txt
    assert {name: dev.get(name) for name in runtime} == runtime  # the dev lock installs the same runtime
    for lock in ("requirements.lock", "requirements-dev.lock"):
        lines = (ROOT / lock).read_text().splitlines()
        entries = [i for i, line in enumerate(lines) if "==" in line and not line.startswith((" ", "#"))]
        assert len(entries) == len(_pins(ROOT / lock))
        unhashed = [lines[i] for i in entries if not lines[i + 1].strip().startswith("--hash=sha256:")]
        assert unhashed == [], lock  # pip then installs in hash-checking mode: all or nothing
        assert not any(line.startswith(("--find-links", "--index-url", "--extra-index-url")) for line in lines)
