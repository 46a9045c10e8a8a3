"""Serving from an Amazon Personalize campaign: GetRecommendations with the attendee as itemId.

Any error or timeout raises `Unavailable`, and the serving path answers from the local model or
the rules engine instead: an attendee never sees a 5xx because AWS is slow or down.
"""

from botocore.exceptions import BotoCoreError, ClientError, StubResponseError

from recommendations.backends import Candidate, Reason, RecommendationBackend, Unavailable
from recommendations.backends.personalize import clients, mapping
from recommendations.backends.personalize.models import RemoteResource
from recommendations.backends.personalize.runs.batch_steps import PERSONALIZE_REASON

# The campaign's filter removes hidden attendees, but the serving path still drops self,
# blocks, connections and not-relevant marks afterwards: ask for more so a full list survives.
HEADROOM = 20
MAX_RESULTS = 500  # GetRecommendations' numResults limit

NO_CAMPAIGN = "No active Amazon Personalize campaign for this event yet."
NOT_IN_MODEL = "This attendee is not in the Amazon Personalize model yet."
CALL_FAILED = "Amazon Personalize did not answer: {error}"

REASON = Reason(kind="similar_activity", text=PERSONALIZE_REASON, weight=1.0)


class PersonalizeBackend(RecommendationBackend):
    name = "personalize"

    def availability(self, *, event) -> tuple[bool, str]:
        problem = clients.configuration_problem()
        if problem:
            return False, problem
        if event is not None and not _campaign(event):
            return False, NO_CAMPAIGN
        return True, ""

    def candidates(self, *, event, attendee, limit: int) -> list[Candidate]:
        problem = clients.configuration_problem()
        if problem:
            raise Unavailable(problem)
        campaign = _campaign(event)
        if not campaign:
            raise Unavailable(NO_CAMPAIGN)
        token = mapping.ids_lookup(event=event, kind=mapping.Kind.ATTENDEE, object_ids=[attendee.pk]).get(attendee.pk)
        if token is None:
            raise Unavailable(NOT_IN_MODEL)
        params = {"campaignArn": campaign, "itemId": token, "numResults": min(limit + HEADROOM, MAX_RESULTS)}
        filter_arn = (
            RemoteResource.objects.filter(event=event, kind=RemoteResource.Kind.FILTER, status="ACTIVE")
            .values_list("arn", flat=True)
            .first()
        )
        if filter_arn:
            params["filterArn"] = filter_arn
        try:
            response = clients.personalize_runtime().get_recommendations(**params)
        except (BotoCoreError, ClientError) as exc:
            if isinstance(exc, StubResponseError):
                raise  # botocore's Stubber in tests: a call that should not have been made
            raise Unavailable(CALL_FAILED.format(error=exc)) from exc
        items = response.get("itemList", [])
        known = mapping.attendees_for_tokens(event=event, tokens=[i.get("itemId", "") for i in items])
        out = []
        for item in items:
            other = known.get(item.get("itemId", ""))
            if other is None or other == attendee.pk:
                continue
            out.append(Candidate(attendee_id=other, score=float(item.get("score", 0.0)), reasons=(REASON,)))
            if len(out) == limit:
                break
        return out


def _campaign(event) -> str:
    return (
        RemoteResource.objects.filter(event=event, kind=RemoteResource.Kind.CAMPAIGN, status="ACTIVE")
        .values_list("arn", flat=True)
        .first()
        or ""
    )
