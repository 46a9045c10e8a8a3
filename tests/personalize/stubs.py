"""Queued AWS answers, one method per call, each with the exact parameters the code must send.
The Stubber checks requests and responses against botocore's Personalize service model."""

import json
from datetime import UTC, datetime

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/PersonalizeS3Access"
BUCKET = "mm-personalize-test"
PREFIX = "matchmaking/"

ACCOUNT = "123456789012"
WHEN = datetime(2026, 6, 4, 12, 0, tzinfo=UTC)

# The documented shapes, written out here independently of the code under test.
INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": "float"},
    ],
    "version": "1.0",
}
ITEMS_SCHEMA = {
    "type": "record",
    "name": "Items",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "EVENT_ID", "type": "string", "categorical": True},
        {"name": "VISIBILITY", "type": "string", "categorical": True},
    ],
    "version": "1.0",
}


def arn(kind: str, rest: str) -> str:
    return f"arn:aws:personalize:{REGION}:{ACCOUNT}:{kind}/{rest}"


class Script:
    def __init__(self, stubs, token: str):
        self.pz = stubs.pz
        self.t = token
        self.dsg = f"mm-{token}"
        self.dsg_arn = arn("dataset-group", self.dsg)
        self.ischema_arn = arn("schema", f"mm-{token}-interactions")
        self.tschema_arn = arn("schema", f"mm-{token}-items")
        self.idata_arn = arn("dataset", f"{self.dsg}/INTERACTIONS")
        self.tdata_arn = arn("dataset", f"{self.dsg}/ITEMS")
        self.tracker_arn = arn("event-tracker", "0a1b2c3d")
        self.tracking_id = "b4e5c6d7-0000-4000-8000-000000000001"
        self.filter_arn = arn("filter", f"mm-{token}-visible")
        self.solution_arn = arn("solution", f"mm-{token}-sims")
        self.campaign_arn = arn("campaign", f"mm-{token}")

    def sv_arn(self, run_id: int) -> str:
        return arn("solution", f"mm-{self.t}-sims/{run_id:08x}")

    def key(self, run_id: int, name: str) -> str:
        return f"{PREFIX}{self.t}/runs/{run_id}/{name}"

    # -- generic ---------------------------------------------------------------------------------
    def ok(self, method, response, params):
        self.pz.add_response(method, response, params)

    def error(self, method, code, message="", params=None, status=400):
        self.pz.add_client_error(
            method, service_error_code=code, service_message=message, http_status_code=status, expected_params=params
        )

    # -- dataset group ---------------------------------------------------------------------------
    def create_dataset_group(self):
        self.ok("create_dataset_group", {"datasetGroupArn": self.dsg_arn}, {"name": self.dsg})

    def describe_dataset_group(self, status="ACTIVE", reason=None):
        body = {"datasetGroupArn": self.dsg_arn, "name": self.dsg, "status": status}
        if reason:
            body["failureReason"] = reason
        self.ok("describe_dataset_group", {"datasetGroup": body}, {"datasetGroupArn": self.dsg_arn})

    # -- schemas, datasets -----------------------------------------------------------------------
    def create_schemas(self):
        self.ok(
            "create_schema",
            {"schemaArn": self.ischema_arn},
            {"name": f"mm-{self.t}-interactions", "schema": json.dumps(INTERACTIONS_SCHEMA, separators=(",", ":"))},
        )
        self.ok(
            "create_schema",
            {"schemaArn": self.tschema_arn},
            {"name": f"mm-{self.t}-items", "schema": json.dumps(ITEMS_SCHEMA, separators=(",", ":"))},
        )

    def create_datasets(self):
        self.ok(
            "create_dataset",
            {"datasetArn": self.idata_arn},
            {
                "name": f"mm-{self.t}-interactions",
                "schemaArn": self.ischema_arn,
                "datasetGroupArn": self.dsg_arn,
                "datasetType": "Interactions",
            },
        )
        self.ok(
            "create_dataset",
            {"datasetArn": self.tdata_arn},
            {
                "name": f"mm-{self.t}-items",
                "schemaArn": self.tschema_arn,
                "datasetGroupArn": self.dsg_arn,
                "datasetType": "Items",
            },
        )

    def describe_datasets(self):
        for dataset_arn in (self.idata_arn, self.tdata_arn):
            self.ok(
                "describe_dataset",
                {"dataset": {"datasetArn": dataset_arn, "status": "ACTIVE"}},
                {"datasetArn": dataset_arn},
            )

    # -- event tracker ---------------------------------------------------------------------------
    def create_event_tracker(self):
        self.ok(
            "create_event_tracker",
            {"eventTrackerArn": self.tracker_arn, "trackingId": self.tracking_id},
            {"name": f"mm-{self.t}-tracker", "datasetGroupArn": self.dsg_arn},
        )

    def describe_event_tracker(self):
        self.ok(
            "describe_event_tracker",
            {
                "eventTracker": {
                    "eventTrackerArn": self.tracker_arn,
                    "trackingId": self.tracking_id,
                    "status": "ACTIVE",
                    "datasetGroupArn": self.dsg_arn,
                }
            },
            {"eventTrackerArn": self.tracker_arn},
        )

    # -- imports ---------------------------------------------------------------------------------
    def import_arn(self, run_id, label):
        return arn("dataset-import-job", f"mm-{self.t}-r{run_id}-{label}")

    def create_imports(self, run_id):
        for label, dataset_arn, name in (
            ("interactions", self.idata_arn, "interactions.csv"),
            ("items", self.tdata_arn, "items.csv"),
        ):
            self.ok(
                "create_dataset_import_job",
                {"datasetImportJobArn": self.import_arn(run_id, label)},
                {
                    "jobName": f"mm-{self.t}-r{run_id}-{label}",
                    "datasetArn": dataset_arn,
                    "dataSource": {"dataLocation": f"s3://{BUCKET}/{self.key(run_id, name)}"},
                    "roleArn": ROLE,
                    "importMode": "FULL",
                },
            )

    def describe_imports(self, run_id, status="ACTIVE"):
        for label in ("interactions", "items"):
            job = self.import_arn(run_id, label)
            self.ok(
                "describe_dataset_import_job",
                {"datasetImportJob": {"datasetImportJobArn": job, "status": status}},
                {"datasetImportJobArn": job},
            )

    # -- filter, solution, version, campaign ------------------------------------------------------
    def create_filter(self):
        self.ok(
            "create_filter",
            {"filterArn": self.filter_arn},
            {
                "name": f"mm-{self.t}-visible",
                "datasetGroupArn": self.dsg_arn,
                "filterExpression": f'INCLUDE ItemID WHERE Items.EVENT_ID IN ("{self.t}") | '
                'EXCLUDE ItemID WHERE Items.VISIBILITY IN ("hidden")',
            },
        )

    def describe_filter(self):
        self.ok(
            "describe_filter",
            {"filter": {"filterArn": self.filter_arn, "status": "ACTIVE"}},
            {"filterArn": self.filter_arn},
        )

    def create_solution(self, threshold="60"):
        self.ok(
            "create_solution",
            {"solutionArn": self.solution_arn},
            {
                "name": f"mm-{self.t}-sims",
                "datasetGroupArn": self.dsg_arn,
                "recipeArn": "arn:aws:personalize:::recipe/aws-sims",
                "solutionConfig": {
                    "eventValueThreshold": threshold,
                    "algorithmHyperParameters": {"max_item_interaction_count_percentile": "1.0"},
                },
            },
        )

    def describe_solution(self, status="ACTIVE"):
        self.ok(
            "describe_solution",
            {"solution": {"solutionArn": self.solution_arn, "status": status}},
            {"solutionArn": self.solution_arn},
        )

    def create_solution_version(self, run_id):
        self.ok(
            "create_solution_version",
            {"solutionVersionArn": self.sv_arn(run_id)},
            {"name": f"mm-{self.t}-r{run_id}", "solutionArn": self.solution_arn, "trainingMode": "FULL"},
        )

    def describe_solution_version(self, run_id, status="ACTIVE", reason=None):
        body = {"solutionVersionArn": self.sv_arn(run_id), "name": f"mm-{self.t}-r{run_id}", "status": status}
        if reason:
            body["failureReason"] = reason
        self.ok("describe_solution_version", {"solutionVersion": body}, {"solutionVersionArn": self.sv_arn(run_id)})

    # What GetSolutionMetrics returns for a SIMS version (names as the service documents them).
    METRICS = {
        "coverage": 0.62,
        "mean_reciprocal_rank_at_25": 0.41,
        "normalized_discounted_cumulative_gain_at_10": 0.38,
        "precision_at_10": 0.21,
        "precision_at_25": 0.12,
    }

    def get_solution_metrics(self, run_id, **metrics):
        self.ok(
            "get_solution_metrics",
            {"solutionVersionArn": self.sv_arn(run_id), "metrics": {**self.METRICS, **metrics}},
            {"solutionVersionArn": self.sv_arn(run_id)},
        )

    def create_campaign(self, run_id):
        self.ok(
            "create_campaign",
            {"campaignArn": self.campaign_arn},
            {"name": f"mm-{self.t}", "solutionVersionArn": self.sv_arn(run_id), "minProvisionedTPS": 1},
        )

    def describe_campaign(self, run_id, status="ACTIVE", latest=None):
        body = {
            "campaignArn": self.campaign_arn,
            "name": f"mm-{self.t}",
            "solutionVersionArn": self.sv_arn(run_id),
            "status": status,
        }
        if latest:
            body["latestCampaignUpdate"] = latest
        self.ok("describe_campaign", {"campaign": body}, {"campaignArn": self.campaign_arn})

    def update_campaign(self, run_id):
        self.ok(
            "update_campaign",
            {"campaignArn": self.campaign_arn},
            {"campaignArn": self.campaign_arn, "solutionVersionArn": self.sv_arn(run_id)},
        )

    # -- whole runs ------------------------------------------------------------------------------
    def first_run(self, run_id):
        """Empty account to active campaign, in the order the state machine makes the calls."""
        self.first_run_until_metrics(run_id)
        self.create_campaign(run_id)
        self.describe_campaign(run_id)

    def retrain_until_metrics(self, run_id, **metrics):
        """Everything exists and is ACTIVE: the new data, the new version and its metrics."""
        self.create_imports(run_id)
        self.describe_imports(run_id)
        self.create_solution_version(run_id)
        self.describe_solution_version(run_id)
        self.get_solution_metrics(run_id, **metrics)

    def first_run_until_metrics(self, run_id, **metrics):
        """Empty account to the new version's metrics (a kept version goes no further)."""
        self.create_dataset_group()
        self.describe_dataset_group()
        self.create_schemas()
        self.create_datasets()
        self.describe_datasets()
        self.create_event_tracker()
        self.describe_event_tracker()
        self.create_imports(run_id)
        self.describe_imports(run_id)
        self.create_filter()
        self.describe_filter()
        self.create_solution()
        self.describe_solution()
        self.create_solution_version(run_id)
        self.describe_solution_version(run_id)
        self.get_solution_metrics(run_id, **metrics)

    def retrain(self, run_id, previous_run_id, **metrics):
        """Everything exists and is ACTIVE: only the new data, the new version, the campaign update."""
        self.retrain_until_metrics(run_id, **metrics)
        self.describe_campaign(previous_run_id)
        self.update_campaign(run_id)
        self.describe_campaign(
            previous_run_id,
            latest={"solutionVersionArn": self.sv_arn(run_id), "status": "ACTIVE", "lastUpdatedDateTime": WHEN},
        )
