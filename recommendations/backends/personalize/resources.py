"""What this app creates in Amazon Personalize, and the describe-or-create primitive.

Names are derived from the event's pseudonymous token, so they are stable: a resource that already
exists under its name (made by a run whose worker died after AWS answered and before our commit)
is adopted, never duplicated.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

SIMS_RECIPE_ARN = "arn:aws:personalize:::recipe/aws-sims"

# SIMS drops the items with the most interactions before training: the default
# max_item_interaction_count_percentile of 0.9 removes the top 10% most-interacted items as
# "too popular to be informative". That is right for products, wrong here: the items are the
# attendees, and the most active 10% of them are exactly the people most worth meeting. The
# popularity problem that the cap addresses lives on the *context* side (the keynote everyone
# joined), which the popularity discount handles. So keep every attendee.
SIMS_HYPERPARAMETERS = {"max_item_interaction_count_percentile": "1.0"}

ACTIVE = "ACTIVE"
POLL_SECONDS = 60  # Personalize resources take minutes; a minute between looks costs nothing.

# Personalize expects Avro schemas. Reverse mapping: USER_ID is a context, ITEM_ID an attendee.
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
# Attendee metadata used only by filters (SIMS itself ignores item metadata).
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

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "SlowDown",
    }
)


def schema_json(schema: dict) -> str:
    return json.dumps(schema, separators=(",", ":"))


@dataclass(frozen=True)
class Names:
    token: str

    @property
    def dataset_group(self) -> str:
        return f"mm-{self.token}"

    @property
    def interactions_schema(self) -> str:
        return f"mm-{self.token}-interactions"

    @property
    def items_schema(self) -> str:
        return f"mm-{self.token}-items"

    @property
    def interactions_dataset(self) -> str:
        return f"mm-{self.token}-interactions"

    @property
    def items_dataset(self) -> str:
        return f"mm-{self.token}-items"

    @property
    def event_tracker(self) -> str:
        return f"mm-{self.token}-tracker"

    @property
    def filter(self) -> str:
        return f"mm-{self.token}-visible"

    @property
    def solution(self) -> str:
        return f"mm-{self.token}-sims"

    @property
    def campaign(self) -> str:
        return f"mm-{self.token}"

    def import_job(self, run_id: int, dataset: str) -> str:
        return f"mm-{self.token}-r{run_id}-{dataset}"

    def solution_version(self, run_id: int) -> str:
        return f"mm-{self.token}-r{run_id}"

    def batch_job(self, run_id: int) -> str:
        return f"mm-{self.token}-b{run_id}"


def filter_expression(event_token: str) -> str:
    """Attendees of this event only, hidden attendees (erased, or not consenting to be
    recommended) out. Joined by a pipe, "INCLUDE A | EXCLUDE B" means "A minus B" (Personalize
    guide, "Combining multiple expressions"). An attendee with no items row at all (erased, then
    dropped by a FULL items import) fails the INCLUDE, so stays out too."""
    return (
        f'INCLUDE ItemID WHERE Items.EVENT_ID IN ("{event_token}") | '
        'EXCLUDE ItemID WHERE Items.VISIBILITY IN ("hidden")'
    )


class CreateFailed(Exception):
    """Personalize reports CREATE FAILED (or any *FAILED status): the run stops with the reason."""


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def is_transient(exc: Exception) -> bool:
    """Worth retrying later: throttling, a 5xx, a timeout or a dropped connection. Anything else
    (AccessDenied, InvalidInput, a missing resource) will not fix itself by waiting."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in THROTTLING_CODES or status >= 500
    # Connect/endpoint errors and read timeouts; not botocore's other errors (a Stubber's
    # assertion is a BotoCoreError too, and must never be retried away).
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def create_or_adopt(create: Callable[[], str], find: Callable[[], str | None]) -> tuple[str, bool]:
    """Call `create` and return (arn, False); if the name is taken, return (the existing arn, True)."""
    try:
        return create(), False
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise
        arn = find()
        if not arn:
            raise
        return arn, True


def find_in_list(call: Callable[..., dict], list_key: str, match: Callable[[dict], bool], arn_key: str, **kwargs):
    """Walk a List* operation page by page; the ARN of the first entry that matches, or None."""
    token = None
    while True:
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        for entry in page.get(list_key, []):
            if match(entry):
                return entry[arn_key]
        token = page.get("nextToken")
        if not token:
            return None
