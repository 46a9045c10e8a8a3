"""The attendee API: suggestions and the actions that change them, with who may call what."""

import threading

import pytest
from django.conf import settings
from django.db import connection as db_connection

from events import services
from events.api.permissions import EVENT_NOT_FOUND
from events.enums import ConnectionStatus
from events.models import Block, Connection, NotRelevant
from events.services import api_key_create
from recommendations.api.permissions import NOT_FOUND
from recommendations.api.serializers import NUM_RESULTS_RANGE
from recommendations.models import FunnelEvent, ModelVersion
from tests.factories import AttendeeFactory, OrganizationFactory, UserFactory

from . import backends
from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return ServingEventFactory(slug="summit")


@pytest.fixture
def people(event):
    viewer, a, b, c = attendees(event, 4)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 3.0), (b.pk, 2.0), (c.pk, 1.0)]}
    return viewer, a, b, c


@pytest.fixture
def api(client, event):
    _, secret = api_key_create(organization=event.organization, name="platform")
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    return client


def url(attendee, tail="recommendations/"):
    return f"/api/v1/events/{attendee.event.slug}/attendees/{attendee.external_id}/{tail}"


def external_ids(response):
    return [item["external_id"] for item in response.json()["items"]]


def test_recommendations_response_shape(api, event, people):
    viewer, a, b, _c = people
    ModelVersion.objects.create(event=event, number=2, status=ModelVersion.Status.PUBLISHED, input_fingerprint="f")
    response = api.get(url(viewer), {"num_results": 2})
    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "external_id": a.external_id,
                "display_name": a.display_name,
                "headline": "",
                "company": "",
                "score": 3.0,
                "here_now": False,
                "reasons": [{"kind": "local_test", "text": "from local", "weight": 3.0}],
                "source": "local",
            },
            {
                "external_id": b.external_id,
                "display_name": b.display_name,
                "headline": "",
                "company": "",
                "score": 2.0,
                "here_now": False,
                "reasons": [{"kind": "local_test", "text": "from local", "weight": 2.0}],
                "source": "local",
            },
        ],
        "source": "local",
        "model_version": 2,
        "phase": "live",
        "cached": False,
        "empty_reason": "",
        "empty_code": "",
    }
    assert api.get(url(viewer), {"num_results": 2}).json()["cached"] is True


@pytest.mark.parametrize("value", ["0", "51", "ten", "-3", "2.5"])
def test_bad_num_results_is_400(api, people, value):
    response = api.get(url(people[0]), {"num_results": value})
    assert response.status_code == 400
    assert response.json() == {"num_results": [NUM_RESULTS_RANGE]}


def test_num_results_bounds_are_accepted(api, people):
    assert len(api.get(url(people[0]), {"num_results": 1}).json()["items"]) == 1
    assert api.get(url(people[0]), {"num_results": 50}).status_code == 200


def test_the_404_says_whether_the_event_or_the_attendee_is_unknown(api, people):
    """It said "No such attendee in this event" for an event that does not exist."""
    viewer = people[0]
    unknown_event = f"/api/v1/events/no-such-event/attendees/{viewer.external_id}/recommendations/"
    assert (api.get(unknown_event).status_code, api.get(unknown_event).json()) == (404, {"detail": EVENT_NOT_FOUND})
    unknown_person = f"/api/v1/events/{viewer.event.slug}/attendees/nobody/recommendations/"
    assert (api.get(unknown_person).status_code, api.get(unknown_person).json()) == (404, {"detail": NOT_FOUND})


def test_other_organizations_event_is_404(client, people):
    viewer = people[0]
    _, secret = api_key_create(organization=ServingEventFactory().organization, name="other platform")
    response = client.get(url(viewer), HTTP_AUTHORIZATION=f"Api-Key {secret}")
    # Exactly what an event that does not exist answers: nothing confirms it is there.
    assert (response.status_code, response.json()) == (404, {"detail": EVENT_NOT_FOUND})
    response = client.post(
        url(viewer, "blocks/"), {"attendee": people[1].external_id}, HTTP_AUTHORIZATION=f"Api-Key {secret}"
    )
    assert response.status_code == 404
    assert Block.objects.count() == 0


def test_unknown_attendee_is_404(api, event):
    assert api.get(f"/api/v1/events/{event.slug}/attendees/nobody/recommendations/").status_code == 404


def test_anonymous_is_refused(client, people):
    assert client.get(url(people[0])).status_code in (401, 403)


def test_logged_in_attendee_reads_own_list_only(client, people):
    viewer, a, *_ = people
    user = UserFactory()
    viewer.user = user
    viewer.save()
    client.force_login(user)
    assert client.get(url(viewer)).status_code == 200
    assert client.get(url(a)).status_code == 404


def test_block_through_api_takes_effect_on_next_response(api, people):
    viewer, a, b, c = people
    assert external_ids(api.get(url(viewer))) == [a.external_id, b.external_id, c.external_id]
    response = api.post(url(viewer, "blocks/"), {"attendee": a.external_id})
    assert response.status_code == 201
    assert external_ids(api.get(url(viewer))) == [b.external_id, c.external_id]


def test_not_relevant_through_api_takes_effect_on_next_response(api, people):
    viewer, a, b, c = people
    api.get(url(viewer))
    assert api.post(url(viewer, "not-relevant/"), {"attendee": b.external_id}).status_code == 201
    assert NotRelevant.objects.filter(attendee=viewer, target=b).exists()
    assert external_ids(api.get(url(viewer))) == [a.external_id, c.external_id]


def test_undo_of_a_block_and_a_not_relevant_mark_brings_the_person_back(api, people):
    viewer, a, b, c = people
    api.post(url(viewer, "blocks/"), {"attendee": a.external_id})
    api.post(url(viewer, "not-relevant/"), {"attendee": b.external_id})
    assert external_ids(api.get(url(viewer))) == [c.external_id]
    assert api.delete(url(viewer, f"blocks/{a.external_id}/")).status_code == 204
    assert api.delete(url(viewer, f"not-relevant/{b.external_id}/")).status_code == 204
    assert external_ids(api.get(url(viewer))) == [a.external_id, b.external_id, c.external_id]
    # Nothing left to take back, or nobody of that id here: 404 saying so.
    response = api.delete(url(viewer, f"blocks/{a.external_id}/"))
    assert (response.status_code, response.json()) == (
        404,
        {"detail": f"This attendee has not blocked {a.external_id!r}."},
    )
    assert api.delete(url(viewer, "not-relevant/ghost/")).status_code == 404


def test_an_attendee_cannot_undo_another_attendees_block(api, people):
    viewer, a, b, _ = people
    api.post(url(a, "blocks/"), {"attendee": b.external_id})
    # The viewer's URL names the viewer: a's block of b is not theirs to lift.
    assert api.delete(url(viewer, f"blocks/{b.external_id}/")).status_code == 404
    assert a.blocks_made.filter(blocked=b).exists()


def test_unknown_target_is_400_naming_the_field(api, people):
    response = api.post(url(people[0], "blocks/"), {"attendee": "ghost"})
    assert (response.status_code, response.json()) == (400, {"attendee": ["No attendee 'ghost' in this event."]})


def test_self_block_is_400(api, people):
    response = api.post(url(people[0], "blocks/"), {"attendee": people[0].external_id})
    assert (response.status_code, response.json()) == (400, {"detail": ["An attendee cannot block themselves."]})


def test_connection_request_accept_and_funnel(api, event, people):
    viewer, a, b, c = people
    api.get(url(viewer), {"num_results": 2})  # shown: a, b
    assert api.post(url(viewer, "recommendations/opened/"), {"attendee": a.external_id}).json() == {"recorded": True}
    assert api.post(url(viewer, "recommendations/opened/"), {"attendee": c.external_id}).json() == {"recorded": False}
    response = api.post(url(viewer, "connections/"), {"recipient": a.external_id, "message": "Coffee?"})
    assert response.status_code == 201
    body = response.json()
    assert (body["requester"], body["recipient"], body["status"], body["message"]) == (
        viewer.external_id,
        a.external_id,
        "requested",
        "Coffee?",
    )
    assert external_ids(api.get(url(viewer))) == [b.external_id, c.external_id]
    # Only the recipient answers.
    assert api.post(url(viewer, f"connections/{body['id']}/accept/")).status_code == 400
    response = api.post(url(a, f"connections/{body['id']}/accept/"))
    assert (response.status_code, response.json()["status"]) == (200, "accepted")
    stages = list(FunnelEvent.objects.filter(viewer=viewer, suggested=a).order_by("id").values_list("stage", "source"))
    assert stages == [("shown", "local"), ("opened", "local"), ("requested", "local"), ("accepted", "local")]


def test_connection_decline(api, people):
    viewer, a, *_ = people
    connection = Connection.objects.create(event=viewer.event, requester=a, recipient=viewer)
    response = api.post(url(viewer, f"connections/{connection.pk}/decline/"))
    assert (response.status_code, response.json()["status"]) == (200, "declined")
    response = api.post(url(viewer, f"connections/{connection.pk}/accept/"))
    assert (response.status_code, response.json()) == (
        400,
        {"detail": ["This connection request was already answered (declined)."]},
    )


def test_connection_of_other_attendees_is_404(api, people):
    viewer, a, b, _ = people
    connection = Connection.objects.create(event=viewer.event, requester=a, recipient=b)
    assert api.post(url(viewer, f"connections/{connection.pk}/accept/")).status_code == 404


def test_consent_update_through_api_takes_effect_on_next_response(api, people):
    viewer, a, b, c = people
    api.get(url(viewer))
    response = api.patch(url(a, "consents/"), {"consent_be_recommended": False}, content_type="application/json")
    assert response.json() == {
        "consent_be_recommended": False,
        "consent_receive_recommendations": True,
        "consent_training": True,
    }
    assert external_ids(api.get(url(viewer))) == [b.external_id, c.external_id]
    api.patch(url(viewer, "consents/"), {"consent_receive_recommendations": False}, content_type="application/json")
    body = api.get(url(viewer)).json()
    assert (body["items"], body["empty_reason"]) == ([], "This attendee has chosen not to receive suggestions.")
    assert body["empty_code"] == "receive_off"  # what the attendee's own widget words for them


def test_consent_bad_value_is_400(api, people):
    response = api.patch(url(people[0], "consents/"), {"consent_training": "maybe"}, content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()) == ["consent_training"]


@pytest.mark.skipif(not settings.REDIS_URL, reason="without Redis the funnel is written at once (one more query)")
def test_list_endpoint_query_count_is_constant(api, people, django_assert_num_queries):
    viewer, *_ = people
    extra = attendees(viewer.event, 20)
    api.get(url(viewer))  # fill the caches: the list, the API key, who the URL names (ids only)
    api.get(url(viewer))  # ... and, from the second request on, the attendee itself
    # The model gives 3: the first read of a longer list fills it (rules, then the most active)
    # and keeps the filled list with the cached one.
    api.get(url(viewer), {"num_results": 3 + len(extra)})
    # Warm: no query at all, whatever the list length.
    with django_assert_num_queries(0):
        api.get(url(viewer), {"num_results": 1})
    with django_assert_num_queries(0):
        api.get(url(viewer), {"num_results": 3 + len(extra)})


def warm(api, attendee) -> None:
    """Three requests: from the third on, the key, the attendee and the list all come from the cache."""
    for _ in range(3):
        assert api.get(url(attendee)).status_code == 200


def test_cached_caller_withdrawing_receive_consent_gets_empty_list_at_once(api, people):
    viewer, *_ = people
    warm(api, viewer)
    services.attendee_set_consents(attendee=viewer, consent_receive_recommendations=False)
    body = api.get(url(viewer)).json()
    assert (body["items"], body["empty_reason"]) == ([], "This attendee has chosen not to receive suggestions.")


def test_cached_caller_new_external_id_frees_the_old_one_at_once(api, people):
    viewer, a, *_ = people
    warm(api, viewer)
    old_url = url(viewer)
    viewer.external_id = "renamed"
    viewer.save()
    assert api.get(old_url).status_code == 404
    assert external_ids(api.get(url(viewer)))[0] == a.external_id


def test_cached_caller_deleted_attendee_is_404_at_once(api, people):
    viewer, *_ = people
    warm(api, viewer)
    old_url = url(viewer)
    viewer.delete()
    assert api.get(old_url).status_code == 404


def test_cached_caller_event_moved_to_another_organization_is_404_at_once(api, event, people):
    viewer, *_ = people
    warm(api, viewer)
    event.organization = OrganizationFactory()
    event.save()
    assert api.get(url(viewer)).status_code == 404


def test_cached_caller_is_per_key_organization(api, client, event, people):
    viewer, *_ = people
    warm(api, viewer)
    _, other = api_key_create(organization=OrganizationFactory(), name="other platform")
    response = client.get(url(viewer), HTTP_AUTHORIZATION=f"Api-Key {other}")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_accept_makes_one_connection():
    event = ServingEventFactory(slug="race")
    requester, recipient = AttendeeFactory(event=event), AttendeeFactory(event=event)
    connection = Connection.objects.create(event=event, requester=requester, recipient=recipient)
    _, secret = api_key_create(organization=event.organization, name="platform")
    barrier = threading.Barrier(2)
    codes = []

    def accept():
        from django.test import Client

        client = Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        barrier.wait()
        try:
            codes.append(client.post(url(recipient, f"connections/{connection.pk}/accept/")).status_code)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 400]
    assert list(Connection.objects.values_list("status", flat=True)) == [ConnectionStatus.ACCEPTED]


def test_hand_built_output_matches_documented_serializer(event, people):
    from recommendations.api.serializers import RecommendationsOutputSerializer
    from recommendations.api.views import recommendations_output
    from recommendations.serving.lists import recommendations_for

    result = recommendations_for(attendee=people[0])
    assert recommendations_output(result) == RecommendationsOutputSerializer(result).data


def test_organizer_reads_but_cannot_act_for_an_attendee(client, event, people):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    viewer, a, *_ = people
    UserFactory(username="orga")
    call_command(
        "create_organizer",
        organization=event.organization.slug,
        username="orga",
        password="pw-orga-123456",
        verbosity=0,
    )
    client.force_login(get_user_model().objects.get(username="orga"))
    assert client.get(url(viewer)).status_code == 200
    assert client.get(url(viewer, "consents/")).status_code == 200
    assert client.post(url(viewer, "blocks/"), {"attendee": a.external_id}).status_code == 404
    assert Block.objects.count() == 0


def test_connections_are_listed_both_ways_and_a_pending_request_can_be_withdrawn(api, people):
    viewer, a, b, c = people
    mine = api.post(url(viewer, "connections/"), {"recipient": a.external_id}).json()
    assert mine["direction"] == "outgoing"
    theirs = Connection.objects.create(event=viewer.event, requester=b, recipient=viewer)
    listed = api.get(url(viewer, "connections/")).json()
    assert [(x["id"], x["direction"], x["status"]) for x in listed] == [
        (theirs.pk, "incoming", "requested"),
        (mine["id"], "outgoing", "requested"),
    ]
    assert api.post(url(viewer, f"connections/{theirs.pk}/accept/")).json()["direction"] == "incoming"
    assert [x["id"] for x in api.get(url(viewer, "connections/"), {"status": "accepted"}).json()] == [theirs.pk]
    response = api.get(url(viewer, "connections/"), {"status": "maybe"})
    assert (response.status_code, list(response.json())) == (400, ["status"])
    # Only the requester withdraws, only while it is pending; then either may ask again.
    response = api.post(url(a, f"connections/{mine['id']}/withdraw/"))
    assert (response.status_code, response.json()) == (
        400,
        {"detail": ["Only the requester can withdraw a connection request."]},
    )
    assert api.post(url(viewer, f"connections/{mine['id']}/withdraw/")).status_code == 204
    assert not Connection.objects.filter(pk=mine["id"]).exists()
    assert api.post(url(a, "connections/"), {"recipient": viewer.external_id}).status_code == 201
    response = api.post(url(viewer, f"connections/{theirs.pk}/withdraw/"))
    assert response.status_code == 400  # not theirs to withdraw, and answered
    assert api.post(url(c, f"connections/{theirs.pk}/withdraw/")).status_code == 404  # another attendee's
