import random
import time

import pytest
from django.core.cache import cache

from events.services import attendee_set_tags
from recommendations.backends import Reason, get_backend
from recommendations.backends.rules import (
    BOOST_GROUP_TEXT,
    BOOST_TAG_TEXT,
    PLANNED_TEXT,
    SHARED_INTEREST_TEXT,
    SHARED_INTERESTS_TEXT,
    THEY_SEEK_TEXT,
    YOU_SEEK_TEXT,
    Declared,
    RuleSet,
    declared_for,
    load_rules,
    rules_candidates,
    score_pair,
)
from recommendations.models import MatchmakingRule
from tests.factories import AttendeeFactory, EventFactory, InterestTagFactory, RoomFactory

# These tests exercise the real rules backend, not the serving doubles.
pytestmark = pytest.mark.real_backends

LABELS = {1: "PostgreSQL", 2: "MLOps", 3: "Kubernetes", 4: "Terraform"}
ROOMS = {10: "Scaling Postgres", 11: "Keynote"}


def test_score_pair_reasons_exact():
    viewer = Declared(
        1, interests=frozenset({1, 2}), seeks=frozenset({3}), offers=frozenset({4}), planned_rooms=frozenset({10, 11})
    )
    other = Declared(
        2, interests=frozenset({1, 2, 3}), offers=frozenset({3}), seeks=frozenset({4}), planned_rooms=frozenset({10})
    )

    score, reasons = score_pair(viewer, other, rules=RuleSet(), tag_labels=LABELS, room_names=ROOMS)

    assert reasons == (
        Reason("complementary", "you seek Kubernetes, they offer it", 2.0),
        Reason("complementary", "they seek Terraform, you offer it", 2.0),
        Reason("shared_interest", "shared interests: MLOps, PostgreSQL", 2.0),
        Reason("planned_session", "you both plan to attend 'Scaling Postgres'", 1.0),
    )
    assert score == 7.0


def test_score_pair_single_interest_uses_singular_text():
    score, reasons = score_pair(
        Declared(1, interests=frozenset({2})),
        Declared(2, interests=frozenset({2})),
        rules=RuleSet(),
        tag_labels=LABELS,
        room_names=ROOMS,
    )
    assert (score, reasons) == (1.0, (Reason("shared_interest", SHARED_INTEREST_TEXT.format(labels="MLOps"), 1.0),))


def test_score_pair_without_signal_is_not_a_candidate():
    assert score_pair(
        Declared(1, interests=frozenset({1})),
        Declared(2, interests=frozenset({2})),
        rules=RuleSet(),
        tag_labels=LABELS,
        room_names=ROOMS,
    ) == (0.0, ())


def test_score_pair_boosts_multiply_and_explain_their_share():
    rules = RuleSet(group_boosts=(("", "sponsor", 1.5),), tag_boosts=(("buyer", 2, 2.0),))
    viewer = Declared(1, group="buyer", interests=frozenset({2}))
    other = Declared(2, group="sponsor", interests=frozenset({2}))

    score, reasons = score_pair(viewer, other, rules=rules, tag_labels=LABELS, room_names=ROOMS)

    assert score == 3.0
    assert reasons == (
        Reason("shared_interest", "shared interest: MLOps", 3.0),
        Reason("organizer_boost", BOOST_GROUP_TEXT.format(group="sponsor"), 1.0),
        Reason("organizer_boost", BOOST_TAG_TEXT.format(label="MLOps"), 1.0),
    )


def test_score_pair_allow_rule_restricts_the_viewer_group_only():
    rules = RuleSet(allow={"sponsor": frozenset({"buyer"})})
    sponsor = Declared(1, group="sponsor", interests=frozenset({1}))
    other_sponsor = Declared(2, group="sponsor", interests=frozenset({1}))
    buyer = Declared(3, group="buyer", interests=frozenset({1}))
    kw = {"rules": rules, "tag_labels": LABELS, "room_names": ROOMS}

    assert score_pair(sponsor, other_sponsor, **kw) == (0.0, ())
    assert score_pair(sponsor, buyer, **kw)[0] == 1.0
    assert score_pair(buyer, sponsor, **kw)[0] == 1.0  # buyers have no allow rule: unrestricted


@pytest.fixture
def world(db):
    event = EventFactory()
    tags = {label: InterestTagFactory(event=event, label=label, slug=label.lower()) for label in LABELS.values()}
    rooms = {name: RoomFactory(event=event, name=name) for name in ROOMS.values()}
    return event, tags, rooms


def _attendee(event, name, group="", **declared):
    attendee = AttendeeFactory(event=event, display_name=name, group=group)
    attendee_set_tags(attendee=attendee, **declared)
    return attendee


def test_rules_candidates_rank_and_explain_from_the_database(world):
    event, t, r = world
    ana = _attendee(
        event,
        "Ana",
        interests=[t["MLOps"], t["PostgreSQL"]],
        seeks=[t["Kubernetes"]],
        planned_rooms=[r["Scaling Postgres"]],
    )
    bob = _attendee(event, "Bob", interests=[t["MLOps"], t["PostgreSQL"]], offers=[t["Kubernetes"]])
    cat = _attendee(event, "Cat", interests=[t["MLOps"]], planned_rooms=[r["Scaling Postgres"]])
    _attendee(event, "Dan", interests=[t["Terraform"]])
    other_event_twin = _attendee(EventFactory(), "Eve")
    assert other_event_twin.pk

    found = get_backend("rules").candidates(event=event, attendee=ana, limit=10)

    assert [(c.attendee_id, c.score) for c in found] == [(bob.pk, 4.0), (cat.pk, 2.0)]
    assert [x.text for x in found[0].reasons] == [
        YOU_SEEK_TEXT.format(label="Kubernetes"),
        SHARED_INTERESTS_TEXT.format(labels="MLOps, PostgreSQL"),
    ]
    assert [x.text for x in found[1].reasons] == [
        SHARED_INTEREST_TEXT.format(labels="MLOps"),
        PLANNED_TEXT.format(names="'Scaling Postgres'"),
    ]
    assert THEY_SEEK_TEXT  # the reverse direction is checked in test_score_pair_reasons_exact


def test_rules_candidates_apply_organizer_rules(world):
    event, t, _ = world
    sponsor = _attendee(event, "Sponsor", group="sponsor", interests=[t["MLOps"]])
    buyer = _attendee(event, "Buyer", group="buyer", interests=[t["MLOps"]])
    _attendee(event, "Rival", group="sponsor", interests=[t["MLOps"]])
    speaker = _attendee(event, "Speaker", group="speaker", interests=[t["MLOps"]])
    MatchmakingRule.objects.create(event=event, kind="allow", from_group="sponsor", to_group="buyer")
    MatchmakingRule.objects.create(event=event, kind="weight", signal="shared_interest", value=3.0)
    MatchmakingRule.objects.create(event=event, kind="boost_group", to_group="speaker", value=2.0)

    for_sponsor = rules_candidates(event=event, attendee=sponsor, limit=10)
    for_buyer = rules_candidates(event=event, attendee=buyer, limit=10)

    assert [(c.attendee_id, c.score) for c in for_sponsor] == [(buyer.pk, 3.0)]
    assert for_buyer[0].attendee_id == speaker.pk
    assert [c.score for c in for_buyer] == [6.0, 3.0, 3.0]


def test_rules_candidates_tag_boost_reorders(world):
    event, t, _ = world
    ana = _attendee(event, "Ana", interests=[t["MLOps"], t["PostgreSQL"]])
    bob = _attendee(event, "Bob", interests=[t["MLOps"], t["PostgreSQL"]])
    cat = _attendee(event, "Cat", interests=[t["MLOps"]], offers=[t["Terraform"]])
    MatchmakingRule.objects.create(event=event, kind="boost_tag", tag=t["Terraform"], value=3.0)

    found = rules_candidates(event=event, attendee=ana, limit=10)

    assert [(c.attendee_id, c.score) for c in found] == [(cat.pk, 3.0), (bob.pk, 2.0)]
    assert found[0].reasons[-1] == Reason("organizer_boost", BOOST_TAG_TEXT.format(label="Terraform"), 2.0)


def test_rules_candidates_limit_keeps_the_best(world):
    event, t, _ = world
    ana = _attendee(event, "Ana", interests=[t["MLOps"], t["PostgreSQL"]])
    _attendee(event, "Bob", interests=[t["MLOps"]])
    cat = _attendee(event, "Cat", interests=[t["MLOps"], t["PostgreSQL"]])

    assert [c.attendee_id for c in rules_candidates(event=event, attendee=ana, limit=1)] == [cat.pk]


def test_rules_candidates_agree_with_score_pair_over_everyone(world):
    """The vectorised ranking and the pure reference give the same list on seeded random data."""

    event, t, r = world
    tags, rooms = list(t.values()), list(r.values())
    rng = random.Random(4)
    people = [
        _attendee(
            event,
            f"P{i}",
            group=rng.choice(["", "sponsor", "buyer", "speaker"]),
            interests=rng.sample(tags, rng.randint(0, 3)),
            offers=rng.sample(tags, rng.randint(0, 1)),
            seeks=rng.sample(tags, rng.randint(0, 1)),
            planned_rooms=rng.sample(rooms, rng.randint(0, 2)),
        )
        for i in range(40)
    ]
    MatchmakingRule.objects.create(event=event, kind="allow", from_group="sponsor", to_group="buyer")
    MatchmakingRule.objects.create(event=event, kind="allow", from_group="sponsor", to_group="speaker")
    MatchmakingRule.objects.create(event=event, kind="boost_group", to_group="speaker", value=1.5)
    MatchmakingRule.objects.create(event=event, kind="boost_tag", from_group="buyer", tag=t["MLOps"], value=2.0)
    MatchmakingRule.objects.create(event=event, kind="weight", signal="planned_session", value=0.25)
    rules = load_rules(event=event)
    declared = declared_for(attendee_ids=[p.pk for p in people])
    labels = {tag.pk: tag.label for tag in tags}
    names = {room.pk: room.name for room in rooms}

    for viewer in people:
        expected = sorted(
            (-s, o)
            for o, d in declared.items()
            if o != viewer.pk
            and (s := score_pair(declared[viewer.pk], d, rules=rules, tag_labels=labels, room_names=names)[0]) > 0
        )
        found = rules_candidates(event=event, attendee=viewer, limit=100)
        assert [(-c.score, c.attendee_id) for c in found] == expected


def test_matchmaking_rules_are_editable_in_the_admin(world, admin_client):
    event, t, _ = world
    rule = MatchmakingRule.objects.create(event=event, kind="boost_tag", tag=t["MLOps"], value=1.5)

    listing = admin_client.get("/admin/recommendations/matchmakingrule/")
    page = admin_client.get(f"/admin/recommendations/matchmakingrule/{rule.pk}/change/")

    assert (listing.status_code, page.status_code) == (200, 200)
    assert "Boost a tag" in listing.content.decode()


def test_a_declaration_reaches_the_candidates_at_once_through_the_outdated_index(
    world, settings, django_capture_on_commit_callbacks
):
    """The index is per process and per event; a profile edit (after commit) outdates it in the
    shared cache, and the next use rebuilds it: no waiting for RULES_INDEX_SECONDS."""
    from events.services import attendee_update_profile
    from recommendations.backends import rules

    settings.RULES_INDEX_SECONDS = 3600  # the TTL cannot be what refreshes it here
    event, t, _ = world
    ana = _attendee(event, "Ana", interests=[t["MLOps"]])
    bob = _attendee(event, "Bob")
    backend = get_backend("rules")
    assert backend.candidates(event=event, attendee=ana, limit=10) == []
    before = rules.rules_index(event=event)
    with django_capture_on_commit_callbacks(execute=True):
        attendee_update_profile(attendee=bob, headline="", company="", interests=[t["MLOps"]], offers=[], seeks=[])
    assert rules.declared_version(event_id=event.pk) == before.version + 1
    assert [c.attendee_id for c in backend.candidates(event=event, attendee=ana, limit=10)] == [bob.pk]
    assert rules.rules_index(event=event).version == before.version + 1


@pytest.mark.django_db(transaction=True)  # the rebuilding thread reads on its own connection
def test_a_slow_index_is_rebuilt_in_the_background_and_the_lists_made_meanwhile_are_dropped(
    world, settings, monkeypatch
):
    from recommendations.backends import rules
    from recommendations.serving.cache import EVENT_VERSION_KEY

    settings.RULES_INDEX_SECONDS = 3600
    monkeypatch.setattr(rules, "REBUILD_INLINE_SECONDS", -1.0)  # every build counts as slow
    event, t, _ = world
    ana = _attendee(event, "Ana", interests=[t["MLOps"]])
    bob = _attendee(event, "Bob")
    backend = get_backend("rules")
    assert backend.candidates(event=event, attendee=ana, limit=10) == []
    attendee_set_tags(attendee=bob, interests=[t["MLOps"]])
    rules.rules_index_outdate(event_id=event.pk)
    lists_before = cache.get(EVENT_VERSION_KEY.format(event_id=event.pk))
    # Served from the old index while one thread rebuilds it, then the event's lists are dropped.
    assert backend.candidates(event=event, attendee=ana, limit=10) == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and rules.rules_index(event=event).version != rules.declared_version(
        event_id=event.pk
    ):
        time.sleep(0.05)
    while time.monotonic() < deadline and event.pk in rules._REFRESHING:
        time.sleep(0.05)
    assert [c.attendee_id for c in backend.candidates(event=event, attendee=ana, limit=10)] == [bob.pk]
    assert cache.get(EVENT_VERSION_KEY.format(event_id=event.pk)) != lists_before
