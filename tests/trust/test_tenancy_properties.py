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
