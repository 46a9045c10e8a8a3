"""The steps of a training run: dataset group, schemas, datasets, event tracker, export, import,
filter, solution, solution version, the publish gate (GetSolutionMetrics against the serving
version and the local model), campaign; and what a finished training records.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from events.models import Event
from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.resources import (
    INTERACTIONS_SCHEMA,
    ITEMS_SCHEMA,
    POLL_SECONDS,
    SIMS_HYPERPARAMETERS,
    SIMS_RECIPE_ARN,
    create_or_adopt,
    filter_expression,
    find_in_list,
    schema_json,
)
from recommendations.backends.personalize.runs.batch_steps import serving_version
from recommendations.backends.personalize.runs.context import (
    TRAINING_POLL_SECONDS,
    Ctx,
    Kind,
    R,
    Step,
    Wait,
    ensure,
    longest,
    named,
    s3_uri,
    status_result,
)
from recommendations.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)


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


def step_dataset_group(ctx: Ctx) -> Wait | None:
    pz, res = ctx.pz, ctx.resource(R.DATASET_GROUP, ctx.names.dataset_group)
    return ensure(
        ctx,
        res,
        create=lambda: pz.create_dataset_group(name=res.name)["datasetGroupArn"],
        find=lambda: find_in_list(pz.list_dataset_groups, "datasetGroups", named(res.name), "datasetGroupArn"),
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
            return find_in_list(pz.list_schemas, "schemas", named(name), "schemaArn")

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
            return find_in_list(pz.list_datasets, "datasets", named(name), "datasetArn", datasetGroupArn=group)

        waits.append(
            ensure(
                ctx,
                res,
                create=create,
                find=find,
                describe=lambda arn: pz.describe_dataset(datasetArn=arn)["dataset"],
            )
        )
    return longest(*waits)


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
            pz.list_event_trackers, "eventTrackers", named(res.name), "eventTrackerArn", datasetGroupArn=group
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
                    named(name, "jobName"),
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
    return longest(*waits)


def step_filter(ctx: Ctx) -> Wait | None:
    pz, group = ctx.pz, ctx.arn_of(R.DATASET_GROUP)
    res = ctx.resource(R.FILTER, ctx.names.filter)
    return ensure(
        ctx,
        res,
        create=lambda: pz.create_filter(
            name=res.name, datasetGroupArn=group, filterExpression=filter_expression(ctx.token)
        )["filterArn"],
        find=lambda: find_in_list(pz.list_filters, "Filters", named(res.name), "filterArn", datasetGroupArn=group),
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
            pz.list_solutions, "solutions", named(res.name), "solutionArn", datasetGroupArn=group
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
    from recommendations.backends.local.fit import local_reference_metrics

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
                named(res.name),
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
        from recommendations.backends.personalize.services import personalize_run_start  # services import this module

        transaction.on_commit(lambda: personalize_run_start(event=event, kind=Kind.PERSONALIZE, trigger="erasure"))


STEPS = [
    Step("dataset_group", step_dataset_group, "CreateDatasetGroup {dataset_group}; DescribeDatasetGroup until ACTIVE"),
    Step("schemas", step_schemas, "CreateSchema {interactions_schema}, CreateSchema {items_schema}"),
    Step(
        "datasets",
        step_datasets,
        "CreateDataset {interactions_dataset} (Interactions), CreateDataset {items_dataset} (Items); "
        "DescribeDataset until ACTIVE",
    ),
    Step("event_tracker", step_event_tracker, "CreateEventTracker {event_tracker}; DescribeEventTracker until ACTIVE"),
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
        "CreateSolution {solution} recipe aws-sims, solutionConfig {solution_config}; DescribeSolution until ACTIVE",
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
]
