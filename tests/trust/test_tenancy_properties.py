"""Property-based tenancy: whatever the events, consents, blocks and connections, a suggestion
list never holds an attendee of another event, one who withdrew "be recommended", one who blocked
or was blocked by the viewer, one already connected (any status), or one the viewer marked not
relevant. Every list is fetched through the public API with the organization's key."""

from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from events import services
from events.enums import ConnectionStatus
from events.models import Attendee, Block, Connection, NotRelevant
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory

pair = st.tuples(st.integers(0, 7), st.integers(0, 7)).filter(lambda p: p[0] != p[1])


@st.composite
def worlds(draw):
    n = draw(st.integers(2, 8))
    return {
        "n": n,
        "be_recommended": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "blocks": [p for p in draw(st.lists(pair, max_size=6)) if max(p) < n],
        "connections": [
            (p, s)
            for p, s in draw(st.lists(st.tuples(pair, st.sampled_from(ConnectionStatus.values)), max_size=6))
            if max(p) < n
        ],
        "not_relevant": [p for p in draw(st.lists(pair, max_size=6)) if max(p) < n],
        "n_same_org_other_event": draw(st.integers(0, 3)),
        "n_other_org": draw(st.integers(0, 3)),
    }


def populate(event, n, label="Shared topic"):
    tag = InterestTagFactory(event=event, label=label, slug="shared")
    people = [AttendeeFactory(event=event, external_id=f"{event.slug}-p{i}") for i in range(n)]
    for person in people:
        services.attendee_set_tags(attendee=person, interests=[tag])
    return people


class TenancyPropertyTests(TestCase):
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=worlds())
    def test_lists_never_cross_tenants_or_filters(self, world):
        cache.clear()
        event = EventFactory()
        sibling = EventFactory(organization=event.organization)  # same organization, other event
        foreign = EventFactory()  # another organization
        people = populate(event, world["n"])
        populate(sibling, world["n_same_org_other_event"])
        populate(foreign, world["n_other_org"])
        for person, flag in zip(people, world["be_recommended"], strict=True):
            Attendee.objects.filter(pk=person.pk).update(consent_be_recommended=flag)
        for i, j in world["blocks"]:
            Block.objects.get_or_create(event=event, blocker=people[i], blocked=people[j])
        for (i, j), status in world["connections"]:
            if not Connection.objects.filter(
                requester__in=[people[i], people[j]], recipient__in=[people[i], people[j]]
            ).exists():
                Connection.objects.create(event=event, requester=people[i], recipient=people[j], status=status)
        for i, j in world["not_relevant"]:
            NotRelevant.objects.get_or_create(event=event, attendee=people[i], target=people[j])

        _, secret = services.api_key_create(organization=event.organization, name="platform")
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        own_ids = {p.external_id for p in people}
        for index, viewer in enumerate(people):
            response = client.get(f"/api/v1/events/{event.slug}/attendees/{viewer.external_id}/recommendations/")
            assert response.status_code == 200, response.content
            got = {item["external_id"] for item in response.json()["items"]}
            forbidden = {viewer.external_id}
            forbidden |= {p.external_id for p, ok in zip(people, world["be_recommended"], strict=True) if not ok}
            forbidden |= {people[j].external_id for i, j in world["blocks"] if i == index}
            forbidden |= {people[i].external_id for i, j in world["blocks"] if j == index}
            forbidden |= {
                people[j if i == index else i].external_id
                for (i, j), _ in world["connections"]
                if index in (i, j)
                and Connection.objects.filter(
                    requester__in=[people[i], people[j]], recipient__in=[people[i], people[j]]
                ).exists()
            }
            forbidden |= {people[j].external_id for i, j in world["not_relevant"] if i == index}
            assert got <= own_ids, f"another event's attendee in {got - own_ids}"
            assert not got & forbidden, f"filtered attendee served: {got & forbidden}"
            # And the filters are not over-eager: everyone else who shares the topic is suggested.
            assert got == own_ids - forbidden


# --- Who may meet whom, over every source ----------------------------------------------------------

GROUPS = ["sponsor", "buyer", "speaker", ""]
# rules: the cold path (the real rules engine). local / personalize: a model's list (the doubles of
# tests/recommendations/backends.py rank everyone, as a model that knows nothing of the rules
# would). batch: an on-demand batch row listing everyone. here-now: the viewer's room full of people.
SOURCES = ["rules", "local", "personalize", "batch", "here-now"]


@st.composite
def meeting_worlds(draw):
    n = draw(st.integers(2, 7))
    return {
        "n": n,
        "groups": draw(st.lists(st.sampled_from(GROUPS), min_size=n, max_size=n)),
        "be_recommended": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "allow": draw(st.lists(st.tuples(st.sampled_from(GROUPS[:3]), st.sampled_from(GROUPS[:3])), max_size=4)),
        "source": draw(st.sampled_from(SOURCES)),
        "num_results": draw(st.sampled_from([1, 3, 10])),
    }


class WhoMayMeetWhomPropertyTests(TestCase):
    """Whatever the groups, the allow rules, the consents and the source that answers, a list
    holds only people the viewer's group may meet (and who consent); and it is not over-eager:
    asked for enough, it lists every one of them. The rules were applied only by the rules engine:
    a sponsor allowed to meet only buyers was shown another sponsor by every other source."""

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=meeting_worlds())
    def test_lists_hold_only_people_the_viewer_may_meet_whatever_the_source(self, world):
        from django.test import override_settings
        from django.utils import timezone

        from events.enums import Backend, Phase
        from events.presence import PRESENCE_CACHE_KEY
        from recommendations.models import BatchRecommendation, MatchmakingRule
        from tests.factories import RoomFactory
        from tests.recommendations import backends as doubles

        cache.clear()
        doubles.reset()
        source = world["source"]
        phase = {"rules": Phase.COLD, "batch": Phase.ON_DEMAND}.get(source, Phase.LIVE)
        backend = Backend.PERSONALIZE if source == "personalize" else Backend.LOCAL
        event = EventFactory(phase=phase, backend=backend, exposure_cap_share=1.0)
        people = populate(event, world["n"])
        for person, group, flag in zip(people, world["groups"], world["be_recommended"], strict=True):
            Attendee.objects.filter(pk=person.pk).update(group=group, consent_be_recommended=flag)
        for from_group, to_group in set(world["allow"]):
            MatchmakingRule.objects.create(event=event, kind="allow", from_group=from_group, to_group=to_group)
        if source == "batch":
            for person in people:
                items = [{"attendee_id": p.pk, "score": 1.0, "reasons": []} for p in people if p != person]
                BatchRecommendation.objects.create(
                    event=event, attendee=person, source="local", items=items, computed_at=timezone.now()
                )
        if source == "here-now":
            room = RoomFactory(event=event)
            cache.set(PRESENCE_CACHE_KEY.format(event_id=event.pk), {p.pk: room.pk for p in people})
            doubles.SCORES["local"] = {p.pk: [] for p in people}  # the model knows no one: "here now" adds them

        allow: dict[str, set[str]] = {}
        for from_group, to_group in world["allow"]:
            allow.setdefault(from_group, set()).add(to_group)
        _, secret = services.api_key_create(organization=event.organization, name="platform")
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        overrides = {} if source == "rules" else {"RECOMMENDATION_BACKENDS": doubles.BACKENDS}
        with override_settings(**overrides):
            for viewer, viewer_group in zip(people, world["groups"], strict=True):
                may = allow.get(viewer_group)
                expected = {
                    p.external_id
                    for p, group, ok in zip(people, world["groups"], world["be_recommended"], strict=True)
                    if p != viewer and ok and (may is None or group in may)
                }
                response = client.get(
                    f"/api/v1/events/{event.slug}/attendees/{viewer.external_id}/recommendations/",
                    {"num_results": world["num_results"]},
                )
                assert response.status_code == 200, response.content
                got = {item["external_id"] for item in response.json()["items"]}
                assert got <= expected, f"{source}: {viewer_group or 'no group'} viewer shown {got - expected}"
                if world["num_results"] >= world["n"]:
                    assert got == expected, f"{source}: over-eager, missing {expected - got}"
