"""GetRecommendations with the attendee as itemId, and the fall back on any failure."""

import pytest
from botocore.exceptions import ReadTimeoutError

from recommendations.backends import Candidate, Reason, Unavailable, get_backend
from recommendations.backends.personalize import clients
from recommendations.backends.personalize.backend import HEADROOM, NO_CAMPAIGN, NOT_IN_MODEL
from recommendations.backends.personalize.models import PersonalizeId
from recommendations.backends.personalize.runs.batch_steps import PERSONALIZE_REASON
from tests.factories import AttendeeFactory

pytestmark = pytest.mark.django_db


def _token(attendee):
    return PersonalizeId.objects.get(event=attendee.event, kind="attendee", object_id=attendee.pk).token


def test_candidates_map_items_back_to_attendees(trained, world, aws):
    _, script, _ = trained
    aws.runtime.add_response(
        "get_recommendations",
        {
            "itemList": [
                {"itemId": _token(world.bob), "score": 0.8},
                {"itemId": "token-of-nobody", "score": 0.7},
                {"itemId": _token(world.ada), "score": 0.6},  # never yourself
                {"itemId": _token(world.cyd), "score": 0.3},
            ],
            "recommendationId": "RID-1",
        },
        {
            "campaignArn": script.campaign_arn,
            "itemId": _token(world.ada),
            "numResults": 5 + HEADROOM,
            "filterArn": script.filter_arn,
        },
    )
    backend = get_backend("personalize")
    result = backend.candidates(event=world.event, attendee=world.ada, limit=5)
    aws.runtime.assert_no_pending_responses()
    reason = (Reason(kind="similar_activity", text=PERSONALIZE_REASON, weight=1.0),)
    assert result == [
        Candidate(attendee_id=world.bob.pk, score=0.8, reasons=reason),
        Candidate(attendee_id=world.cyd.pk, score=0.3, reasons=reason),
    ]
    assert PERSONALIZE_REASON == "similar activity (Amazon Personalize)"
    assert backend.availability(event=world.event) == (True, "")


def test_candidates_raise_unavailable_on_an_aws_error(trained, world, aws):
    aws.runtime.add_client_error("get_recommendations", service_error_code="ThrottlingException", http_status_code=400)
    with pytest.raises(Unavailable, match="Amazon Personalize did not answer"):
        get_backend("personalize").candidates(event=world.event, attendee=world.ada, limit=5)


def test_candidates_raise_unavailable_on_a_timeout(trained, world, aws):
    client = clients.personalize_runtime()

    def time_out(**kwargs):
        raise ReadTimeoutError(endpoint_url="https://personalize-runtime.eu-west-1.amazonaws.com")

    # In place of the Stubber: the endpoint does not answer within the client's read timeout.
    aws.runtime.deactivate()
    client.meta.events.register("before-call.personalize-runtime.GetRecommendations", time_out)
    try:
        with pytest.raises(Unavailable, match="Read timeout on endpoint URL"):
            get_backend("personalize").candidates(event=world.event, attendee=world.ada, limit=5)
    finally:
        client.meta.events.unregister("before-call.personalize-runtime.GetRecommendations", time_out)


def test_runtime_client_fails_fast(aws):
    config = clients.personalize_runtime().meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (1, 2, 1)


def test_candidates_unavailable_before_a_campaign_exists(aws, world):
    backend = get_backend("personalize")
    assert backend.availability(event=world.event) == (False, NO_CAMPAIGN)
    with pytest.raises(Unavailable, match=NO_CAMPAIGN):
        backend.candidates(event=world.event, attendee=world.ada, limit=5)


def test_candidates_unavailable_for_an_attendee_not_in_the_model(trained, world, aws):
    newcomer = AttendeeFactory(event=world.event)
    with pytest.raises(Unavailable, match=NOT_IN_MODEL):
        get_backend("personalize").candidates(event=world.event, attendee=newcomer, limit=5)
