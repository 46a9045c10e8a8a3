"""Never worse than the obvious, never empty: the product serves the list its own split chose,
fills every short list, and a version the gate kept never empties one (real backends)."""

import io
import json

import numpy as np
import pytest

from recommendations.backends.local.fit import train_event_now
from recommendations.backends.local.loaded import loaded_model
from recommendations.backends.popularity import ACTIVE_TEXT, ATTENDING_TEXT, served_as
from recommendations.management.commands.batch_recommendations import write_batch
from recommendations.models import ModelVersion
from recommendations.serving.lists import POOL_SIZE, recommendations_for
from tests.engine.worlds import dense, groups, misleading_history
from tests.factories import AttendeeFactory, InteractionFactory, RoomFactory

from .factories import ServingEventFactory, attendees, load_world

pytestmark = [pytest.mark.django_db, pytest.mark.real_backends]


def test_an_event_whose_own_split_favours_popularity_serves_popularity_with_its_reasons():
    event = ServingEventFactory()
    people = load_world(event, misleading_history())

    version = train_event_now(event=event)

    assert version.status == ModelVersion.Status.PUBLISHED
    assert version.metrics["ranker"]["name"] == "popularity (partners)"
    assert version.metrics["ranker"]["kind"] == "baseline"
    assert served_as(version) == "popularity"
    result = recommendations_for(attendee=people[10], num_results=10)
    assert result.source == "popularity"
    assert {item.source for item in result.items} == {"popularity"}
    hubs = {p.pk for p in people[:4]}
    assert {item.attendee_id for item in result.items[:4]} == hubs  # the most sociable first
    top = result.items[0]
    assert [r["kind"] for r in top.reasons] == ["sociable"]
    assert top.reasons[0]["text"].startswith("well connected: in sessions with ")


def test_an_event_of_groups_serves_its_learned_ranking():
    event = ServingEventFactory()
    people = load_world(event, groups())

    version = train_event_now(event=event)

    ranker = version.metrics["ranker"]
    assert (ranker["kind"], served_as(version)) == ("learned", "local")
    assert set(ranker["importance"]) == {
        "time together",
        "people met in common",
        "repeat meetings",
        "sociability",
        "time among people",
    }
    assert version.metrics["precision_at_10"] > version.metrics["popularity_precision_at_10"]
    result = recommendations_for(attendee=people[0], num_results=5)
    assert result.source == "local"
    assert all(item.attendee_id in {p.pk for p in people[:10]} for item in result.items)


def test_a_kept_version_never_empties_a_list():
    event = ServingEventFactory()
    viewer, a, b = attendees(event, 3)
    room = RoomFactory(event=event, name="Hall")
    for person, minutes in ((a, 50), (b, 20), (viewer, 5)):
        InteractionFactory(attendee=person, room=room, value=minutes * 60)
    ModelVersion.objects.create(
        event=event, number=1, status=ModelVersion.Status.KEPT, input_fingerprint="f", not_published_reason="worse"
    )

    result = recommendations_for(attendee=viewer)

    assert result.source == "popularity"
    assert [(i.attendee_id, i.source) for i in result.items] == [(a.pk, "popularity"), (b.pk, "popularity")]
    assert result.items[0].reasons[0]["text"] == ACTIVE_TEXT.format(minutes=50)


def test_a_short_list_is_filled_by_rules_then_popularity_each_entry_marked():
    event = ServingEventFactory()
    n = POOL_SIZE + 5
    people = attendees(event, n)
    viewer, partner = people[0], people[1]
    for i, person in enumerate(people[2:], start=2):  # everyone else active; longer stays first
        InteractionFactory(attendee=person, room=RoomFactory(event=event), value=6000 - 60 * i)
    for _ in range(5):  # five rooms: enough that the model speaks alone (no blend with the rules)
        room = RoomFactory(event=event)
        InteractionFactory(attendee=viewer, room=room, value=600)
        InteractionFactory(attendee=partner, room=room, value=600)
    tag = event.interest_tags.create(slug="mlops", label="MLOps")
    for person in (viewer, people[7]):
        person.interests.add(tag)
    train_event_now(event=event)

    result = recommendations_for(attendee=viewer, num_results=50, use_cache=False)

    assert len(result.items) == 50  # full: more than 50 others consent
    sources = [item.source for item in result.items]
    first_rules, first_popular = sources.index("rules"), sources.index("popularity")
    assert sources[0] == "local" and result.items[0].attendee_id == partner.pk
    assert first_rules < first_popular  # in order: the model's, the rules', then popularity
    assert result.items[first_rules].attendee_id == people[7].pk
    assert result.items[first_popular].attendee_id == people[2].pk  # the most active
    assert len({item.attendee_id for item in result.items}) == 50
    scores = [item.score for item in result.items]
    assert scores == sorted(scores, reverse=True)


def test_a_viewer_nobody_knows_anything_about_still_gets_the_most_active():
    event = ServingEventFactory()
    viewer, a = attendees(event, 2)
    AttendeeFactory(event=event, consent_be_recommended=False)  # never suggested
    InteractionFactory(attendee=a, room=RoomFactory(event=event), value=900)

    result = recommendations_for(attendee=viewer)

    assert [(i.attendee_id, i.source) for i in result.items] == [(a.pk, "popularity")]


def test_before_anyone_did_anything_a_list_holds_the_other_attendees_and_says_so():
    event = ServingEventFactory()
    viewer, a, b = attendees(event, 3)

    result = recommendations_for(attendee=viewer)

    assert [(i.attendee_id, i.source) for i in result.items] == [(a.pk, "popularity"), (b.pk, "popularity")]
    assert result.items[0].reasons == [{"kind": "attending", "text": ATTENDING_TEXT, "weight": 0.0}]


def test_a_long_list_keeps_one_entry_in_ten_for_people_not_met_at_its_end():
    event = ServingEventFactory()
    people = load_world(event, dense(n=40, met=30))
    version = train_event_now(event=event)
    loaded = loaded_model(version)
    a = loaded.index_of(people[0].pk)
    met = {loaded.index_of(p.pk) for p in people[1:31]}
    assert set(loaded.met_of(a).tolist()) == met
    plain, _ = loaded.model.neighbours(a, 20)
    assert sum(int(b) not in met for b in plain) < 2  # what the model ranks first: people met

    idx, scores = loaded.ranked(a, 20)

    assert len(idx) == 20
    assert idx[:18].tolist() == plain[:18].tolist()  # only the tail gives way
    best_new, _ = loaded.model.neighbours(a, 2, exclude=np.array(sorted(met | {a})))
    assert idx[18:].tolist() == best_new.tolist()
    assert list(scores) == sorted(scores, reverse=True)
    # the batch ranks through the same method
    out = io.StringIO()
    write_batch(event=event, version=version, num_results=20, out=out)
    lines = {json.loads(line)["input"]["itemId"]: json.loads(line)["output"] for line in out.getvalue().splitlines()}
    listed = lines[people[0].external_id]["recommendedItems"]
    assert len(listed) == 20
    new = {p.external_id for p in people[31:]}
    assert [x in new for x in listed].count(True) >= 2
