"""Personalize runs as persisted state machines.

A run is a `TrainingRun` row (kind personalize, batch or teardown) whose `steps` list holds, per
step: name, status, attempts, the ARNs it made, timestamps and a message. `personalize_run_advance`
advances one run as far as it can without waiting: each step is one transaction under a row lock
(`select_for_update(skip_locked=True)`), so two workers never advance the same run, and a worker
killed at any point loses at most the step in flight, which the next worker repeats by describing
what exists (stored ARNs) or adopting it by name (ResourceAlreadyExistsException).

Long operations are polled by returning a countdown; the Celery task re-schedules itself with it.
Nothing ever sleeps in a worker.
"""

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, StubResponseError
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone

from events.models import Attendee, Event
from recommendations.models import BatchRecommendation, ModelVersion, TrainingRun

from . import clients, mapping
from .models import RemoteResource
from .resources import (
    ACTIVE,
    INTERACTIONS_SCHEMA,
    ITEMS_SCHEMA,
    POLL_SECONDS,
    SIMS_HYPERPARAMETERS,
    SIMS_RECIPE_ARN,
    CreateFailed,
    Names,
    create_or_adopt,
    error_code,
    filter_expression,
    find_in_list,
    is_transient,
    schema_json,
)

logger = logging.getLogger(__name__)

Kind = TrainingRun.Kind
Status = TrainingRun.Status
R = RemoteResource.Kind

PENDING, RUNNING, WAITING, DONE, FAILED = "pending", "running", "waiting", "done", "failed"
TRAINING_POLL_SECONDS = 300  # a solution version trains for tens of minutes at least
MAX_TRANSIENT_ATTEMPTS = 8  # with the backoff below: about 20 minutes of throttling, then give up
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 600.0
BATCH_NUM_RESULTS = 25
# A re-delivered or duplicated task that arrives well before the poll its chain scheduled exits
# instead of starting a second polling chain for the same run.
EARLY_SLACK = timedelta(seconds=2)

# The publish gate of a new solution version (step "gate"). Personalize's offline metrics
# (GetSolutionMetrics) include precision_at_10, as the local model's do: the same figure, the same
# data (the qualifying interactions with training consent), each on its own holdout (Personalize
# holds out the latest interactions of a random share of its users; the local model the last 20 %
# of the event's rows).
GATE_METRIC = "precision_at_10"
GATE_NO_METRIC = "Amazon Personalize reported no {metric} for this version, and serving v{number} has one"
GATE_BELOW_SERVING = "{metric} {new:.4f} < serving v{number}'s {old:.4f}"
GATE_BELOW_LOCAL = "{metric} {new:.4f} < the local model's {old:.4f} on this event's own split"
GATE_PASSED = "{metric} {new} (serving: {serving}; local model: {local})"
KEPT = "Kept v{number}, not published: {reason}. The campaign still serves {serving}."

NO_MODEL = "No trained Amazon Personalize model (solution version) for this event: run a training first."
NO_FILTER = "The event's Personalize filter does not exist yet: run a training first."
TOO_MANY_RETRIES = "Gave up after {n} attempts: {error}"


@dataclass(frozen=True)
class Wait:
    seconds: float


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with 'equal jitter': half the delay fixed, half random, so that
    workers throttled together do not come back together."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


# --- Keys and names ---------------------------------------------------------------------------------


def s3_uri(key: str) -> str:
    return f"s3://{settings.PERSONALIZE_BUCKET or '<PERSONALIZE_BUCKET>'}/{key}"


def s3_keys(*, token: str, run_id: int | str) -> dict[str, str]:
    prefix = settings.PERSONALIZE_PREFIX.strip("/")
    base = f"{prefix}/{token}/" if prefix else f"{token}/"
    return {
        "interactions": f"{base}runs/{run_id}/interactions.csv",
        "items": f"{base}runs/{run_id}/items.csv",
        "batch_input": f"{base}batch/{run_id}/input.jsonl",
        "batch_output": f"{base}batch/{run_id}/output/",
    }


# --- Step context -----------------------------------------------------------------------------------


class Ctx:
    def __init__(self, run: TrainingRun, state: dict):
        self.run = run
        self.event: Event = run.event
        self.state = state
        self.token = mapping.event_token(self.event)
        self.names = Names(self.token)
        self.keys = s3_keys(token=self.token, run_id=run.pk)
        self.pz = clients.personalize()

    @property
    def arns(self) -> dict:
        return self.state.setdefault("arns", {})

    @property
    def data(self) -> dict:
        return self.state.setdefault("data", {})

    def note(self, text: str) -> None:
        self.state["message"] = text

    def earlier(self, step: str) -> dict:
        """The persisted state of an earlier step of this run."""
        return next(s for s in self.run.steps if s["name"] == step)

    def resource(self, kind: str, name: str) -> RemoteResource:
        res, _ = RemoteResource.objects.get_or_create(event=self.event, kind=kind, defaults={"name": name})
        return res

    def arn_of(self, kind: str) -> str:
        arn = RemoteResource.objects.filter(event=self.event, kind=kind).values_list("arn", flat=True).first()
        if not arn:
            raise CreateFailed(f"{R(kind).label} is missing; the run cannot continue.")
        return arn


def status_result(desc: dict, what: str, poll: float = POLL_SECONDS) -> Wait | None:
    status = desc.get("status", "")
    if status == ACTIVE:
        return None
    if status.endswith("FAILED"):
        raise CreateFailed(f"{what}: {status}: {desc.get('failureReason') or 'no reason given'}")
    return Wait(poll)


def ensure(
    ctx: Ctx,
    res: RemoteResource,
    *,
    create: Callable[[], str],
    find: Callable[[], str | None],
    describe: Callable[[str], dict] | None,
) -> Wait | None:
    """Describe-or-create one resource. A resource seen ACTIVE is trusted without a call."""
    if res.arn and res.status == ACTIVE:
        ctx.arns[res.kind] = res.arn
        return None
    if not res.arn:
        arn, adopted = create_or_adopt(create, find)
        res.arn = arn
        res.status = "CREATE PENDING" if describe else ACTIVE
        res.save()
        ctx.arns[res.kind] = arn
        if adopted:
            ctx.note(f"Adopted the existing {res.get_kind_display().lower()} {res.name}.")
        if describe is None:
            return None
        if not adopted:
            return Wait(POLL_SECONDS)
    # A resource without a status to describe (a schema) is saved ACTIVE as soon as it has an ARN.
    assert describe is not None
    desc = describe(res.arn)
    res.status = desc.get("status", "")
    res.save()
    ctx.arns[res.kind] = res.arn
    return status_result(desc, f"{res.get_kind_display()} {res.name}")


def _longest(*waits: Wait | None) -> Wait | None:
    pending = [w for w in waits if w is not None]
    return max(pending, key=lambda w: w.seconds) if pending else None


def _named(name: str, key: str = "name") -> Callable[[dict], bool]:
    return lambda entry: entry.get(key) == name


# --- Training steps ---------------------------------------------------------------------------------


def step_dataset_group(ctx: Ctx) -> Wait | None:
    pz, res = ctx.pz, ctx.resource(R.DATASET_GROUP, ctx.names.dataset_group)
    return ensure(
        ctx,
        res,
        create=lambda: pz.create_dataset_group(name=res.name)["datasetGroupArn"],
        find=lambda: find_in_list(pz.list_dataset_groups, "datasetGroups", _named(res.name), "datasetGroupArn"),
        describe=lambda arn: pz.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"],
    )


def step_schemas(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    for kind, name, schema in (
        (R.INTERACTIONS_SCHEMA, ctx.names.interactions_schema, INTERACTIONS_SCHEMA),
        (R.ITEMS_SCHEMA, ctx.names.items_schema, ITEMS_SCHEMA),
    ):
        res = ctx.resource(kind, name)

        def create(name: str = name, schema: dict = schema) -> str:
            return pz.create_schema(name=name, schema=schema_json(schema))["schemaArn"]

        def find(name: str = name) -> str | None:
            return find_in_list(pz.list_schemas, "schemas", _named(name), "schemaArn")

        ensure(
            ctx,
            res,
            create=create,
            find=find,
            describe=None,  # schemas have no status: they exist or they do not
        )
    return None


def step_datasets(ctx: Ctx) -> Wait | None:
    pz, group = ctx.pz, ctx.arn_of(R.DATASET_GROUP)
    waits = []
    for kind, schema_kind, name, dataset_type in (
        (R.INTERACTIONS_DATASET, R.INTERACTIONS_SCHEMA, ctx.names.interactions_dataset, "Interactions"),
        (R.ITEMS_DATASET, R.ITEMS_SCHEMA, ctx.names.items_dataset, "Items"),
    ):
        res = ctx.resource(kind, name)
        schema_arn = ctx.arn_of(schema_kind)

        def create(name: str = name, schema_arn: str = schema_arn, dataset_type: str = dataset_type) -> str:
            return pz.create_dataset(name=name, schemaArn=schema_arn, datasetGroupArn=group, datasetType=dataset_type)[
                "datasetArn"
            ]

        def find(name: str = name) -> str | None:
            return find_in_list(pz.list_datasets, "datasets", _named(name), "datasetArn", datasetGroupArn=group)

        waits.append(
            ensure(
                ctx,
                res,
                create=create,
                find=find,
                describe=lambda arn: pz.describe_dataset(datasetArn=arn)["dataset"],
            )
        )
    return _longest(*waits)


def step_event_tracker(ctx: Ctx) -> Wait | None:
    pz, group = ctx.pz, ctx.arn_of(R.DATASET_GROUP)
    res = ctx.resource(R.EVENT_TRACKER, ctx.names.event_tracker)

    def create() -> str:
        made = pz.create_event_tracker(name=res.name, datasetGroupArn=group)
        res.extra = {**res.extra, "tracking_id": made["trackingId"]}
        return made["eventTrackerArn"]

    def describe(arn: str) -> dict:
        desc = pz.describe_event_tracker(eventTrackerArn=arn)["eventTracker"]
        res.extra = {**res.extra, "tracking_id": desc.get("trackingId", res.extra.get("tracking_id", ""))}
        return desc

    return ensure(
        ctx,
        res,
        create=create,
        find=lambda: find_in_list(
            pz.list_event_trackers, "eventTrackers", _named(res.name), "eventTrackerArn", datasetGroupArn=group
        ),
        describe=describe,
    )


def step_export(ctx: Ctx) -> Wait | None:
    """Write the two CSV files to S3. No Personalize call; repeating it rewrites the same keys."""
    export = mapping.export_build(event=ctx.event)
    s3 = clients.s3()
    try:
        s3.upload_fileobj(export.interactions, settings.PERSONALIZE_BUCKET, ctx.keys["interactions"])
        s3.upload_fileobj(export.items, settings.PERSONALIZE_BUCKET, ctx.keys["items"])
    finally:
        export.close()
    ctx.data.update(
        {
            "interactions_key": ctx.keys["interactions"],
            "items_key": ctx.keys["items"],
            "n_interactions": export.n_interactions,
            "n_items": export.n_items,
            "fingerprint": export.fingerprint,
            "n_erased": len(mapping.erased_attendee_ids(event=ctx.event)),  # left out of this export
        }
    )
    ctx.note(f"Exported {export.n_interactions} interactions and {export.n_items} attendees.")
    return None


def step_import(ctx: Ctx) -> Wait | None:
    """One FULL import job per dataset: FULL replaces the dataset's bulk data, which is what
    removes erased attendees and withdrawn consents from the next model."""
    pz = ctx.pz
    waits: list[Wait | None] = []
    for label, dataset_kind, key in (
        ("interactions", R.INTERACTIONS_DATASET, ctx.keys["interactions"]),
        ("items", R.ITEMS_DATASET, ctx.keys["items"]),
    ):
        slot = f"import_{label}"
        name = ctx.names.import_job(ctx.run.pk, label)
        dataset_arn = ctx.arn_of(dataset_kind)
        if slot not in ctx.arns:

            def create(name: str = name, dataset_arn: str = dataset_arn, key: str = key) -> str:
                return pz.create_dataset_import_job(
                    jobName=name,
                    datasetArn=dataset_arn,
                    dataSource={"dataLocation": s3_uri(key)},
                    roleArn=settings.PERSONALIZE_ROLE_ARN,
                    importMode="FULL",
                )["datasetImportJobArn"]

            def find(name: str = name, dataset_arn: str = dataset_arn) -> str | None:
                return find_in_list(
                    pz.list_dataset_import_jobs,
                    "datasetImportJobs",
                    _named(name, "jobName"),
                    "datasetImportJobArn",
                    datasetArn=dataset_arn,
                )

            arn, adopted = create_or_adopt(create, find)
            ctx.arns[slot] = arn
            if not adopted:
                waits.append(Wait(POLL_SECONDS))
                continue
        if ctx.data.get(f"{slot}_done"):
            continue
        desc = pz.describe_dataset_import_job(datasetImportJobArn=ctx.arns[slot])["datasetImportJob"]
        wait = status_result(desc, f"Dataset import job {name}")
        if wait is None:
            ctx.data[f"{slot}_done"] = True
        waits.append(wait)
    return _longest(*waits)


def step_filter(ctx: Ctx) -> Wait | None:
    pz, group = ctx.pz, ctx.arn_of(R.DATASET_GROUP)
    res = ctx.resource(R.FILTER, ctx.names.filter)
    return ensure(
        ctx,
        res,
        create=lambda: pz.create_filter(
            name=res.name, datasetGroupArn=group, filterExpression=filter_expression(ctx.token)
        )["filterArn"],
        find=lambda: find_in_list(pz.list_filters, "Filters", _named(res.name), "filterArn", datasetGroupArn=group),
        describe=lambda arn: pz.describe_filter(filterArn=arn)["filter"],
    )


def solution_config(event: Event) -> dict:
    threshold = mapping.event_value_threshold(event)
    return {
        "eventValueThreshold": str(int(threshold)) if threshold.is_integer() else str(threshold),
        "algorithmHyperParameters": dict(SIMS_HYPERPARAMETERS),
    }


def step_solution(ctx: Ctx) -> Wait | None:
    pz, group = ctx.pz, ctx.arn_of(R.DATASET_GROUP)
    res = ctx.resource(R.SOLUTION, ctx.names.solution)
    return ensure(
        ctx,
        res,
        create=lambda: pz.create_solution(
            name=res.name,
            datasetGroupArn=group,
            recipeArn=SIMS_RECIPE_ARN,
            solutionConfig=solution_config(ctx.event),
        )["solutionArn"],
        find=lambda: find_in_list(
            pz.list_solutions, "solutions", _named(res.name), "solutionArn", datasetGroupArn=group
        ),
        describe=lambda arn: pz.describe_solution(solutionArn=arn)["solution"],
    )


def step_solution_version(ctx: Ctx) -> Wait | None:
    pz, solution = ctx.pz, ctx.arn_of(R.SOLUTION)
    name = ctx.names.solution_version(ctx.run.pk)
    if "solution_version" not in ctx.arns:

        def find() -> str | None:
            # The summaries carry no name: describe them until the one with ours turns up.
            def match(entry: dict) -> bool:
                desc = pz.describe_solution_version(solutionVersionArn=entry["solutionVersionArn"])
                return desc["solutionVersion"].get("name") == name

            return find_in_list(
                pz.list_solution_versions, "solutionVersions", match, "solutionVersionArn", solutionArn=solution
            )

        arn, adopted = create_or_adopt(
            lambda: pz.create_solution_version(name=name, solutionArn=solution, trainingMode="FULL")[
                "solutionVersionArn"
            ],
            find,
        )
        ctx.arns["solution_version"] = arn
        if not adopted:
            return Wait(TRAINING_POLL_SECONDS)
    desc = pz.describe_solution_version(solutionVersionArn=ctx.arns["solution_version"])["solutionVersion"]
    return status_result(desc, f"Solution version {name}", poll=TRAINING_POLL_SECONDS)


def _metric_text(value) -> str:
    return "none" if value is None else f"{value:.4f}"


def step_gate(ctx: Ctx) -> Wait | None:
    """Read the new version's offline metrics and decide whether it may serve: its
    `GATE_METRIC` must be at least the serving version's and the local model's on the event's
    own data. A worse version is kept with its reason, and the campaign is left as it is."""
    arn = ctx.earlier("solution_version")["arns"]["solution_version"]
    reported = ctx.pz.get_solution_metrics(solutionVersionArn=arn).get("metrics", {})
    metrics = {name: float(value) for name, value in reported.items()}
    new = metrics.get(GATE_METRIC)
    serving = serving_version(ctx.event)
    old = serving.metrics.get(GATE_METRIC) if serving is not None else None
    number = serving.number if serving is not None else None
    # Imported here: the local backend loads the serving path, which loads this backend.
    from recommendations.local import local_reference_metrics

    local = local_reference_metrics(event=ctx.event).get(GATE_METRIC)
    if new is None:
        reason = GATE_NO_METRIC.format(metric=GATE_METRIC, number=number) if old is not None else ""
    elif old is not None and new < old:
        reason = GATE_BELOW_SERVING.format(metric=GATE_METRIC, new=new, number=number, old=old)
    elif local is not None and new < local:
        reason = GATE_BELOW_LOCAL.format(metric=GATE_METRIC, new=new, old=local)
    else:
        reason = ""
    ctx.data.update(metrics=metrics, serving=old, serving_number=number, local=local, reason=reason)
    ctx.data["publish"] = not reason
    if reason:
        ctx.note(f"Not published: {reason}.")
    else:
        texts = {"new": _metric_text(new), "serving": _metric_text(old), "local": _metric_text(local)}
        ctx.note("Passed: " + GATE_PASSED.format(metric=GATE_METRIC, **texts))
    return None


def step_campaign(ctx: Ctx) -> Wait | None:
    """Create the campaign on the first run; on every later run, point it at the new version.
    A version the gate kept goes no further: the campaign keeps serving what it serves."""
    if not ctx.earlier("gate").get("data", {}).get("publish", True):
        ctx.note("Campaign left as it is: the gate kept this version.")
        return None
    pz, solution_version = ctx.pz, ctx.earlier("solution_version")["arns"]["solution_version"]
    res = ctx.resource(R.CAMPAIGN, ctx.names.campaign)
    if not res.arn:
        arn, adopted = create_or_adopt(
            lambda: pz.create_campaign(name=res.name, solutionVersionArn=solution_version, minProvisionedTPS=1)[
                "campaignArn"
            ],
            lambda: find_in_list(
                pz.list_campaigns,
                "campaigns",
                _named(res.name),
                "campaignArn",
                solutionArn=ctx.arn_of(R.SOLUTION),
            ),
        )
        res.arn, res.status = arn, "CREATE PENDING"
        res.save()
        ctx.arns[R.CAMPAIGN] = arn
        if not adopted:
            return Wait(POLL_SECONDS)
    ctx.arns[R.CAMPAIGN] = res.arn
    desc = pz.describe_campaign(campaignArn=res.arn)["campaign"]
    res.status = desc.get("status", "")
    res.extra = {**res.extra, "solution_version": desc.get("solutionVersionArn", "")}
    res.save()
    latest = desc.get("latestCampaignUpdate")
    what = f"Campaign {res.name}"
    if latest and latest.get("solutionVersionArn") == solution_version:
        return status_result(latest, f"{what} update")
    wait = status_result(desc, what)
    if wait is not None:
        return wait
    if latest and not latest.get("status", "").endswith(("ACTIVE", "FAILED")):
        return Wait(POLL_SECONDS)  # another update is still rolling out; ours goes after it
    if desc.get("solutionVersionArn") == solution_version and not latest:
        return None
    pz.update_campaign(campaignArn=res.arn, solutionVersionArn=solution_version)
    ctx.note(f"Campaign updated to {solution_version}.")
    return Wait(POLL_SECONDS)


def finish_training(run: TrainingRun) -> None:
    """Record the new solution version as a model version of the event: the serving one if the
    gate passed it, else kept beside the serving one with the gate's reason."""
    steps = {s["name"]: s for s in run.steps}
    export = steps["export"].get("data", {})
    gate = steps["gate"].get("data", {})
    arn = steps["solution_version"]["arns"]["solution_version"]
    event = run.event
    publish = gate.get("publish", True)
    previous = serving_version(event)
    if publish:
        ModelVersion.objects.filter(event=event, status=ModelVersion.Status.PUBLISHED).update(
            status=ModelVersion.Status.SUPERSEDED
        )
    number = (ModelVersion.objects.filter(event=event).aggregate(n=Max("number"))["n"] or 0) + 1
    local = gate.get("local")
    run.model_version = ModelVersion.objects.create(
        event=event,
        backend="personalize",
        number=number,
        status=ModelVersion.Status.PUBLISHED if publish else ModelVersion.Status.KEPT,
        not_published_reason=gate.get("reason", ""),
        input_fingerprint=export.get("fingerprint", ""),
        config={"recipe": SIMS_RECIPE_ARN, "solution_config": solution_config(event)},
        metrics={**gate.get("metrics", {}), **({f"local_{GATE_METRIC}": local} if local is not None else {})},
        n_attendees=export.get("n_items", 0),
        n_interactions=export.get("n_interactions", 0),
        remote_arn=arn,
        published_at=timezone.now() if publish else None,
    )
    if publish:
        run.message = f"Campaign serving {arn}."
    else:
        serving = f"v{previous.number} ({previous.remote_arn})" if previous else "nothing (no version has passed yet)"
        run.message = KEPT.format(number=number, reason=gate.get("reason", ""), serving=serving)
    erased_since_export = len(mapping.erased_attendee_ids(event=event)) - export.get("n_erased", 0)
    if erased_since_export > 0:
        # Someone was erased after this run had exported: they are hidden by the filter now,
        # and one more run takes them out of the model for good.
        from .services import personalize_run_start  # services import this module

        transaction.on_commit(lambda: personalize_run_start(event=event, kind=Kind.PERSONALIZE, trigger="erasure"))


# --- Batch steps ------------------------------------------------------------------------------------


def serving_version(event: Event) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(event=event, backend="personalize")
        .exclude(remote_arn="")
        .filter(status=ModelVersion.Status.PUBLISHED)
        .order_by("-number")
        .first()
    )


def batch_attendees(event: Event):
    return (
        Attendee.objects.filter(event=event, consent_receive_recommendations=True)
        .exclude(pk__in=mapping.erased_attendee_ids(event=event))
        .order_by("pk")
    )


def step_batch_input(ctx: Ctx) -> Wait | None:
    """JSON lines, one {"itemId": ...} per attendee who receives suggestions."""
    version = serving_version(ctx.event)
    if version is None:
        raise CreateFailed(NO_MODEL)
    ids = list(batch_attendees(ctx.event).values_list("pk", flat=True))
    tokens = mapping.ids_ensure(event=ctx.event, kind=mapping.Kind.ATTENDEE, object_ids=ids)
    body = "".join(json.dumps({"itemId": tokens[pk]}) + "\n" for pk in ids)
    clients.s3().put_object(Bucket=settings.PERSONALIZE_BUCKET, Key=ctx.keys["batch_input"], Body=body.encode())
    ctx.data.update({"input_key": ctx.keys["batch_input"], "n_items": len(ids), "model_version": version.pk})
    ctx.arns["solution_version"] = version.remote_arn
    return None


def step_batch_job(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    inputs = ctx.earlier("batch_input")
    solution_version = inputs["arns"]["solution_version"]
    name = ctx.names.batch_job(ctx.run.pk)
    if "batch_inference_job" not in ctx.arns:
        filter_arn = RemoteResource.objects.filter(event=ctx.event, kind=R.FILTER).values_list("arn", flat=True).first()
        if not filter_arn:
            raise CreateFailed(NO_FILTER)
        arn, adopted = create_or_adopt(
            lambda: pz.create_batch_inference_job(
                jobName=name,
                solutionVersionArn=solution_version,
                filterArn=filter_arn,
                numResults=BATCH_NUM_RESULTS,
                jobInput={"s3DataSource": {"path": s3_uri(ctx.keys["batch_input"])}},
                jobOutput={"s3DataDestination": {"path": s3_uri(ctx.keys["batch_output"])}},
                roleArn=settings.PERSONALIZE_ROLE_ARN,
            )["batchInferenceJobArn"],
            lambda: find_in_list(
                pz.list_batch_inference_jobs,
                "batchInferenceJobs",
                _named(name, "jobName"),
                "batchInferenceJobArn",
                solutionVersionArn=solution_version,
            ),
        )
        ctx.arns["batch_inference_job"] = arn
        if not adopted:
            return Wait(TRAINING_POLL_SECONDS)
    desc = pz.describe_batch_inference_job(batchInferenceJobArn=ctx.arns["batch_inference_job"])["batchInferenceJob"]
    return status_result(desc, f"Batch inference job {name}", poll=TRAINING_POLL_SECONDS)


PERSONALIZE_REASON = "similar activity (Amazon Personalize)"


def reason_dict() -> dict:
    return {"kind": "similar_activity", "text": PERSONALIZE_REASON, "weight": 1.0}


def step_batch_load(ctx: Ctx) -> Wait | None:
    """Read every `*.out` file under the output prefix into the batch table."""
    s3, bucket = clients.s3(), settings.PERSONALIZE_BUCKET
    inputs = ctx.earlier("batch_input")
    version_id = inputs.get("data", {}).get("model_version")
    results: dict[str, tuple[list[str], list[float]]] = {}
    errors = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=ctx.keys["batch_output"]):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".out"):
                continue
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            for line in body.splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                if record.get("error"):
                    errors += 1
                    continue
                output = record.get("output") or {}
                results[record["input"]["itemId"]] = (output.get("recommendedItems", []), output.get("scores", []))
    known = mapping.attendees_for_tokens(
        event=ctx.event, tokens=set(results) | {t for items, _ in results.values() for t in items}
    )
    now = timezone.now()
    loaded = 0
    for token, (items, scores) in results.items():
        attendee_id = known.get(token)
        if attendee_id is None:
            continue
        suggestions = []
        for i, item in enumerate(items):
            other = known.get(item)
            if other is None or other == attendee_id:
                continue
            score = float(scores[i]) if i < len(scores) else 0.0
            suggestions.append({"attendee_id": other, "score": score, "reasons": [reason_dict()]})
        BatchRecommendation.objects.update_or_create(
            attendee_id=attendee_id,
            defaults={
                "event": ctx.event,
                "model_version_id": version_id,
                "source": "personalize",
                "items": suggestions,
                "computed_at": now,
            },
        )
        loaded += 1
    ctx.data.update({"loaded": loaded, "errors": errors})
    ctx.note(f"Loaded {loaded} batch lists ({errors} input lines failed remotely).")
    return None


# --- Teardown steps ---------------------------------------------------------------------------------


def _not_found(exc: ClientError) -> bool:
    return error_code(exc) == "ResourceNotFoundException"


def _teardown(
    ctx: Ctx, kind: str, delete: Callable[[str], object], describe: Callable[[str], dict] | None
) -> Wait | None:
    """Delete one resource and wait until it is gone; its row goes with it."""
    res = RemoteResource.objects.filter(event=ctx.event, kind=kind).first()
    if res is None or not res.arn:
        if res is not None:
            res.delete()
        return None
    ctx.arns[kind] = res.arn
    if not res.extra.get("delete_requested"):
        try:
            delete(res.arn)
        except ClientError as exc:
            if _not_found(exc):
                res.delete()
                return None
            if error_code(exc) == "ResourceInUseException":
                return Wait(POLL_SECONDS)  # a dependant is still being deleted
            raise
        res.extra = {**res.extra, "delete_requested": True}
        res.status = "DELETE PENDING"
        res.save()
        if describe is None:
            res.delete()
            return None
        return Wait(POLL_SECONDS)
    try:
        # Not None: a resource without a status to describe went with its row above, in the
        # same step (one transaction), so none is ever left marked delete_requested.
        assert describe is not None
        desc = describe(res.arn)
    except ClientError as exc:
        if _not_found(exc):
            res.delete()
            return None
        raise
    res.status = desc.get("status", "")
    res.save()
    if res.status.endswith("FAILED"):
        raise CreateFailed(f"Deleting {res.get_kind_display().lower()} {res.name}: {desc.get('failureReason', '')}")
    return Wait(POLL_SECONDS)


def step_delete_campaign(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    return _teardown(
        ctx,
        R.CAMPAIGN,
        lambda arn: pz.delete_campaign(campaignArn=arn),
        lambda arn: pz.describe_campaign(campaignArn=arn)["campaign"],
    )


def step_delete_solution(ctx: Ctx) -> Wait | None:
    pz = ctx.pz  # deleting a solution deletes its solution versions
    return _teardown(
        ctx,
        R.SOLUTION,
        lambda arn: pz.delete_solution(solutionArn=arn),
        lambda arn: pz.describe_solution(solutionArn=arn)["solution"],
    )


def step_delete_event_tracker(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    return _teardown(
        ctx,
        R.EVENT_TRACKER,
        lambda arn: pz.delete_event_tracker(eventTrackerArn=arn),
        lambda arn: pz.describe_event_tracker(eventTrackerArn=arn)["eventTracker"],
    )


def step_delete_filter(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    return _teardown(
        ctx,
        R.FILTER,
        lambda arn: pz.delete_filter(filterArn=arn),
        lambda arn: pz.describe_filter(filterArn=arn)["filter"],
    )


def step_delete_datasets(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    return _longest(
        *(
            _teardown(
                ctx,
                kind,
                lambda arn: pz.delete_dataset(datasetArn=arn),
                lambda arn: pz.describe_dataset(datasetArn=arn)["dataset"],
            )
            for kind in (R.INTERACTIONS_DATASET, R.ITEMS_DATASET)
        )
    )


def step_delete_dataset_group(ctx: Ctx) -> Wait | None:
    pz = ctx.pz
    return _teardown(
        ctx,
        R.DATASET_GROUP,
        lambda arn: pz.delete_dataset_group(datasetGroupArn=arn),
        lambda arn: pz.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"],
    )


def step_delete_schemas(ctx: Ctx) -> Wait | None:
    pz = ctx.pz  # schemas are deleted at once and have no status to wait on
    return _longest(
        *(
            _teardown(ctx, kind, lambda arn: pz.delete_schema(schemaArn=arn), None)
            for kind in (R.INTERACTIONS_SCHEMA, R.ITEMS_SCHEMA)
        )
    )


# --- The machine ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Ctx], Wait | None]
    plan: str  # the calls it makes, for `personalize_plan`


STEPS: dict[str, list[Step]] = {
    Kind.PERSONALIZE: [
        Step(
            "dataset_group", step_dataset_group, "CreateDatasetGroup {dataset_group}; DescribeDatasetGroup until ACTIVE"
        ),
        Step("schemas", step_schemas, "CreateSchema {interactions_schema}, CreateSchema {items_schema}"),
        Step(
            "datasets",
            step_datasets,
            "CreateDataset {interactions_dataset} (Interactions), CreateDataset {items_dataset} (Items); "
            "DescribeDataset until ACTIVE",
        ),
        Step(
            "event_tracker", step_event_tracker, "CreateEventTracker {event_tracker}; DescribeEventTracker until ACTIVE"
        ),
        Step("export", step_export, "S3 PutObject {interactions_key} and {items_key}"),
        Step(
            "import",
            step_import,
            "CreateDatasetImportJob (FULL) x2 from those keys; DescribeDatasetImportJob until ACTIVE",
        ),
        Step("filter", step_filter, "CreateFilter {filter}: {filter_expression}; DescribeFilter until ACTIVE"),
        Step(
            "solution",
            step_solution,
            "CreateSolution {solution} recipe aws-sims, solutionConfig {solution_config}; "
            "DescribeSolution until ACTIVE",
        ),
        Step(
            "solution_version",
            step_solution_version,
            "CreateSolutionVersion (FULL); DescribeSolutionVersion until ACTIVE",
        ),
        Step(
            "gate",
            step_gate,
            f"GetSolutionMetrics; the version serves only if its {GATE_METRIC} is at least the serving "
            "version's and the local model's on this event's data",
        ),
        Step(
            "campaign",
            step_campaign,
            "CreateCampaign {campaign} (first run) or UpdateCampaign to the new version; DescribeCampaign until ACTIVE",
        ),
    ],
    Kind.BATCH: [
        Step("batch_input", step_batch_input, "S3 PutObject {batch_input} (JSON lines of itemId)"),
        Step(
            "batch_job",
            step_batch_job,
            "CreateBatchInferenceJob with the filter, output to {batch_output}; DescribeBatchInferenceJob until ACTIVE",
        ),
        Step("batch_load", step_batch_load, "S3 ListObjectsV2/GetObject {batch_output}*.out into the batch table"),
    ],
    Kind.TEARDOWN: [
        Step("delete_campaign", step_delete_campaign, "DeleteCampaign; DescribeCampaign until gone"),
        Step("delete_solution", step_delete_solution, "DeleteSolution (and its versions); DescribeSolution until gone"),
        Step("delete_event_tracker", step_delete_event_tracker, "DeleteEventTracker; until gone"),
        Step("delete_filter", step_delete_filter, "DeleteFilter; until gone"),
        Step("delete_datasets", step_delete_datasets, "DeleteDataset x2; until gone"),
        Step("delete_dataset_group", step_delete_dataset_group, "DeleteDatasetGroup; until gone"),
        Step("delete_schemas", step_delete_schemas, "DeleteSchema x2"),
    ],
}
FINISH: dict[str, Callable[[TrainingRun], None]] = {Kind.PERSONALIZE: finish_training}


def initial_steps(kind: str) -> list[dict]:
    return [{"name": s.name, "status": PENDING, "attempts": 0, "arns": {}} for s in STEPS[kind]]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _fail(run: TrainingRun, state: dict | None, message: str, now: datetime) -> None:
    if state is not None:
        state["status"] = FAILED
        state["message"] = message
        state["finished_at"] = _iso(now)
    run.status = Status.FAILED
    run.message = message
    run.finished_at = now
    run.save()
    logger.warning("Personalize run %s failed: %s", run.pk, message)


def _client_error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{exc.operation_name}: {err.get('Code', '')}: {err.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"


def personalize_run_advance(*, run_id: int, now: datetime | None = None) -> float | None:
    """Advance the run as far as it goes without waiting. Returns the countdown (seconds) after
    which it should be advanced again, or None when there is nothing to schedule: the run is
    finished or failed, is gone, or another worker holds it."""
    while True:
        moment = now or timezone.now()
        with transaction.atomic():
            run = (
                TrainingRun.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .filter(pk=run_id)
                .first()
            )
            if run is None or run.status not in (Status.PENDING, Status.RUNNING):
                return None
            if [s.get("name") for s in run.steps] != [s.name for s in STEPS.get(run.kind, [])]:
                return None  # not a Personalize run (the local model's batch runs share the kind)
            index = next((i for i, s in enumerate(run.steps) if s["status"] != DONE), None)
            if index is None:
                finish = FINISH.get(run.kind)
                if finish:
                    finish(run)
                run.status, run.progress, run.finished_at = Status.SUCCEEDED, 1.0, moment
                run.save()
                return None
            state = run.steps[index]
            poll_at = state.get("poll_at")
            if poll_at and moment < datetime.fromisoformat(poll_at) - EARLY_SLACK:
                return None  # a poll is already scheduled by the chain that owns this run
            if run.status == Status.PENDING:
                run.status, run.started_at = Status.RUNNING, moment
            state["status"] = RUNNING
            state.setdefault("started_at", _iso(moment))
            step = STEPS[run.kind][index]
            try:
                result = step.run(Ctx(run, state))
            except CreateFailed as exc:
                _fail(run, state, str(exc), moment)
                return None
            except S3UploadFailedError as exc:  # boto3's transfer wraps S3's ClientError in this
                _fail(run, state, f"S3 upload: {exc}", moment)
                return None
            except (ClientError, BotoCoreError) as exc:
                if isinstance(exc, StubResponseError):
                    raise  # botocore's Stubber saying the code made a call it should not have
                if isinstance(exc, ClientError) and error_code(exc) == "ResourceInUseException":
                    # Busy, not broken: an import, a training or a campaign update is still
                    # running on what this step needs. Wait for it like any long operation.
                    state["status"] = WAITING
                    state["last_error"] = f"{_client_error_text(exc)}; waiting"
                    state["poll_at"] = _iso(moment + timedelta(seconds=TRAINING_POLL_SECONDS))
                    run.save()
                    return float(TRAINING_POLL_SECONDS)
                if not is_transient(exc):
                    _fail(run, state, _client_error_text(exc), moment)
                    return None
                # attempts: every retry of this step, for the admin; retries: the ones in a row,
                # which is what the limit is about (a training polled for hours may be throttled
                # now and then without ever being in trouble).
                state["attempts"] = state.get("attempts", 0) + 1
                state["retries"] = state.get("retries", 0) + 1
                run.attempts += 1
                if state["retries"] >= MAX_TRANSIENT_ATTEMPTS:
                    _fail(
                        run,
                        state,
                        TOO_MANY_RETRIES.format(n=state["retries"], error=_client_error_text(exc)),
                        moment,
                    )
                    return None
                delay = backoff_seconds(state["retries"])
                state["status"] = WAITING
                state["last_error"] = f"{_client_error_text(exc)}; retrying in {delay:.0f} s"
                state["poll_at"] = _iso(moment + timedelta(seconds=delay))
                run.save()
                return delay
            except DatabaseError:
                raise  # the transaction is broken: nothing can be recorded; the sweeper retries
            except Exception as exc:
                # A bug, or an error of a kind not foreseen: fail visibly with the reason rather
                # than crash the task and have the sweeper repeat it every minute.
                logger.exception("Personalize run %s: unexpected error in step %s", run.pk, step.name)
                _fail(run, state, f"Unexpected error: {type(exc).__name__}: {exc}", moment)
                return None
            state["retries"] = 0
            if isinstance(result, Wait):
                state["status"] = WAITING
                state["poll_at"] = _iso(moment + timedelta(seconds=result.seconds))
                run.save()
                return result.seconds
            state["status"] = DONE
            state["finished_at"] = _iso(moment)
            state.pop("poll_at", None)
            run.progress = sum(1 for s in run.steps if s["status"] == DONE) / len(run.steps)
            run.save()


# --- Plan (dry run) ---------------------------------------------------------------------------------


def run_plan(*, event: Event, token: str) -> list[str]:
    """The calls a training run of this event would make, and what it would upload; no AWS call
    and no write. `token` is the event's pseudonymous id (or a placeholder if it has none yet)."""
    names = Names(token)
    keys = s3_keys(token=token, run_id="<run>")
    fields = {
        **{p: getattr(names, p) for p in ("dataset_group", "interactions_schema", "items_schema")},
        **{p: getattr(names, p) for p in ("interactions_dataset", "items_dataset", "event_tracker")},
        **{p: getattr(names, p) for p in ("filter", "solution", "campaign")},
        "interactions_key": s3_uri(keys["interactions"]),
        "items_key": s3_uri(keys["items"]),
        "batch_input": s3_uri(keys["batch_input"]),
        "batch_output": s3_uri(keys["batch_output"]),
        "filter_expression": filter_expression(token),
        "solution_config": json.dumps(solution_config(event)),
    }
    lines = []
    for kind in (Kind.PERSONALIZE, Kind.BATCH, Kind.TEARDOWN):
        lines.append(f"{TrainingRun.Kind(kind).label}:")
        for i, step in enumerate(STEPS[kind], 1):
            lines.append(f"  {i}. {step.name}: {step.plan.format(**fields)}")
    return lines
