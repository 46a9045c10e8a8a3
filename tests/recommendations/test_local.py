import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.cache import cache

from events.models import InterestTag
from events.questionnaire import questionnaire_weight
from events.services import attendee_set_tags
from recommendations.backends import Reason, Unavailable, get_backend
from recommendations.backends.local import inputs, realtime, reasons
from recommendations.backends.local.fit import fit_local_model, train_event_now
from recommendations.backends.local.inputs import NO_DWELL_SECONDS, load_event_data
from recommendations.backends.local.loaded import (
    NO_PUBLISHED_VERSION,
    forget_loaded_models,
    loaded_model,
    published_version,
)
from recommendations.backends.local.realtime import live_list, realtime_apply, realtime_key, realtime_why_key
from recommendations.backends.local.reasons import SPENT_SAME_TIME_TEXT
from recommendations.backends.rules import SHARED_INTEREST_TEXT
from recommendations.engine import EngineConfig, Model
from recommendations.live.receivers import interactions_push
from recommendations.models import ModelVersion
from tests.factories import AttendeeFactory, ContentFactory, EventFactory, InteractionFactory, RoomFactory

pytestmark = [pytest.mark.django_db, pytest.mark.real_backends]

T0 = datetime(2026, 6, 4, 9, 0, tzinfo=UTC)
# Only co-presence, so that the scores are the engine's `direct` term and can be checked by hand.
DIRECT_ONLY = EngineConfig(w_direct=1.0, w_two_hop=0.0, w_social=0.0, same_time_bonus=1.0, popularity_discount=1.0)


def visit(attendee, room, *, at=0, dwell=600, **kw):
    return InteractionFactory(
        attendee=attendee, event=attendee.event, room=room, value=dwell, occurred_at=T0 + timedelta(seconds=at), **kw
    )


def v(dwell):
    return math.log1p(dwell / 60)


def test_load_event_data_weights_dwell_and_type_and_skips_unqualified_and_unconsented():
    event = EventFactory(interaction_weights={"view_content": 2.0})
    ana, bob = AttendeeFactory(event=event), AttendeeFactory(event=event, consent_training=False)
    room, content = RoomFactory(event=event), ContentFactory(event=event)
    tag = InterestTag.objects.create(event=event, slug="mlops", label="MLOps")
    visit(ana, room, dwell=600)
    InteractionFactory(attendee=ana, event=event, room=None, content=content, type="view_content", value=120)
    InteractionFactory(attendee=ana, event=event, room=None, interest=tag, type="questionnaire", value=None)
    InteractionFactory(attendee=ana, event=event, room=room, type="chat", value=None)
    visit(ana, room, dwell=20, qualifies=False)
    visit(bob, room)

    data = load_event_data(event=event)

    x = data.inputs
    assert data.attendee_ids.tolist() == [ana.pk, bob.pk]
    assert x.attendee.tolist() == [0, 0, 0, 0]
    # The questionnaire answer fades with Ana's three qualifying live interactions.
    assert x.weight.tolist() == pytest.approx(
        [600.0, 240.0, NO_DWELL_SECONDS * questionnaire_weight(3), NO_DWELL_SECONDS * 1.5]
    )
    assert (x.ends() - x.starts()).tolist() == [600.0, 120.0, 0.0, 0.0]
    assert x.n_contexts == 3  # the chat shares the room's context


def test_a_questionnaire_answer_weighs_less_in_training_once_its_attendee_acts():
    """The fading weight was a function only its own test called; training used a constant."""
    event = EventFactory(interaction_weights={"questionnaire": 0.8})
    ana = AttendeeFactory(event=event)
    room = RoomFactory(event=event)
    tag = InterestTag.objects.create(event=event, slug="mlops", label="MLOps")
    InteractionFactory(attendee=ana, event=event, room=None, interest=tag, type="questionnaire", value=None)

    def answer_weight():
        data = load_event_data(event=event)
        context = data.context_keys.tolist().index((inputs.INTEREST << 48) | tag.pk)
        return float(data.inputs.weight[data.inputs.context == context][0])

    before = answer_weight()
    assert before == pytest.approx(NO_DWELL_SECONDS * 0.8)
    for minute in range(10):
        visit(ana, room, dwell=120, at=minute * 600)
    visit(ana, room, dwell=5, qualifies=False)  # a click that does not qualify counts for nothing
    assert answer_weight() == pytest.approx(before / 2)  # ten live interactions: one half-life


def test_popularity_discount_ranks_the_small_room_first_hand_checked():
    event = EventFactory()
    ana, bob, cat, dan, eve = (AttendeeFactory(event=event, display_name=n) for n in "ABCDE")
    small, big = RoomFactory(event=event, name="Small"), RoomFactory(event=event, name="Big")
    visit(ana, small), visit(bob, small)
    for person in (ana, cat, dan, eve):
        visit(person, big, at=3600)
    version = train_event_now(event=event, config=DIRECT_ONLY)
    model = Model.load(f"{version.artifact}/model.npz")

    found = get_backend("local").candidates(event=event, attendee=ana, limit=10)

    # direct = idf * v_a * v_b * (1 + overlap); idf = 1 / (size - 1): 1 for the pair, 1/3 for the four
    assert model.explain(0, 1).direct_raw == pytest.approx(1.0 * v(600) ** 2 * 2)
    assert model.explain(0, 2).direct_raw == pytest.approx(v(600) ** 2 * 2 / 3)
    assert [(c.attendee_id, round(c.score, 6)) for c in found] == [
        (bob.pk, 1.0),
        (cat.pk, 0.333333),
        (dan.pk, 0.333333),
        (eve.pk, 0.333333),
    ]


def test_same_time_counts_double_and_says_so():
    event = EventFactory()
    ana, bob, cat = (AttendeeFactory(event=event) for _ in range(3))
    x, y = RoomFactory(event=event, name="Scaling Postgres"), RoomFactory(event=event, name="Hallway")
    visit(ana, x, at=0, dwell=2400), visit(bob, x, at=0, dwell=2400)
    visit(ana, y, at=5000, dwell=2400), visit(cat, y, at=9000, dwell=2400)  # same room, not at the same time
    train_event_now(event=event, config=DIRECT_ONLY)

    found = get_backend("local").candidates(event=event, attendee=ana, limit=10)

    assert [(c.attendee_id, c.score) for c in found] == [(bob.pk, 1.0), (cat.pk, 0.5)]
    assert found[0].reasons == (
        Reason("same_time", SPENT_SAME_TIME_TEXT.format(minutes=40, name="Scaling Postgres"), 1.0),
    )
    assert found[1].reasons == (Reason("shared_room", "you both spent 40 min in 'Hallway'", 0.5),)


def test_local_backend_unavailable_without_a_published_version():
    event = EventFactory()
    with pytest.raises(Unavailable, match=NO_PUBLISHED_VERSION.format(event=event.slug).replace("`", ".")[:40]):
        get_backend("local").candidates(event=event, attendee=AttendeeFactory(event=event), limit=5)


def test_cold_attendee_blends_rules_evidence():
    event = EventFactory()
    ana, bob, cat = (AttendeeFactory(event=event) for _ in range(3))
    tag = InterestTag.objects.create(event=event, slug="mlops", label="MLOps")
    attendee_set_tags(attendee=ana, interests=[tag])
    attendee_set_tags(attendee=cat, interests=[tag])
    room = RoomFactory(event=event)
    visit(ana, room), visit(bob, room)  # one context: 1/5 of the evidence comes from the model
    train_event_now(event=event, config=DIRECT_ONLY)

    found = get_backend("local").candidates(event=event, attendee=ana, limit=10)

    assert [(c.attendee_id, round(c.score, 6)) for c in found] == [(cat.pk, 0.8), (bob.pk, 0.2)]
    assert found[0].reasons == (Reason("shared_interest", SHARED_INTEREST_TEXT.format(labels="MLOps"), 0.8),)


def test_train_keeps_a_worse_version_unpublished():
    event = EventFactory()
    people = [AttendeeFactory(event=event) for _ in range(6)]
    rooms = [RoomFactory(event=event) for _ in range(6)]
    for i in range(12):
        visit(people[i % 6], rooms[i % 3], at=600 * i)
    first = train_event_now(event=event, config=DIRECT_ONLY)
    ModelVersion.objects.filter(pk=first.pk).update(metrics={"recall_at_10": 2.0})
    for i in range(12):
        visit(people[i % 6], rooms[3 + i % 3], at=10000 + 600 * i)

    second = train_event_now(event=event, config=DIRECT_ONLY)

    first.refresh_from_db()
    assert (first.status, second.status) == ("published", "kept")
    assert second.not_published_reason.startswith("recall_at_10 ")


def test_realtime_update_equals_a_full_retrain():
    event = EventFactory()
    people = [AttendeeFactory(event=event) for _ in range(8)]
    rooms = [RoomFactory(event=event) for _ in range(4)]
    for i, person in enumerate(people[:7]):
        visit(person, rooms[i % 3], at=100 * i, dwell=300 + 60 * i)
        visit(person, rooms[(i + 1) % 3], at=4000 + 50 * i, dwell=900)
    config = EngineConfig(context_cap=64)  # the engine freezes the cap between refits
    version = train_event_now(event=event, config=config)
    new = [
        visit(people[7], rooms[0], at=200, dwell=1200),  # an attendee the model has never seen
        visit(people[0], rooms[3], at=7000, dwell=600),  # a room nobody had joined
        visit(people[5], rooms[3], at=7100, dwell=600),
    ]

    recomputed = realtime_apply(event_id=event.pk, interaction_ids=[i.pk for i in new])
    retrained = fit_local_model(event=event, config=config)

    full = Model.load(f"{retrained.artifact}/model.npz")
    ids = load_event_data(event=event).attendee_ids.tolist()
    live = {p.pk: live_list(version.pk, p.pk) for p in people}
    touched = {pk for pk, lst in live.items() if lst is not None}
    assert recomputed == len(touched)
    assert {people[7].pk, people[0].pk, people[5].pk} <= touched
    for pk in touched:
        idx, scores = full.neighbours(ids.index(pk))
        assert [b for b, _ in live[pk]["items"]] == [ids[i] for i in idx.tolist()]
        assert np.allclose([s for _, s in live[pk]["items"]], scores.tolist())


def test_realtime_apply_is_idempotent_and_serving_reads_it():
    event = EventFactory()
    ana, bob, cat = (AttendeeFactory(event=event) for _ in range(3))
    room, other = RoomFactory(event=event), RoomFactory(event=event, name="Late room")
    for p in (ana, bob):
        visit(p, room)
    version = train_event_now(event=event, config=DIRECT_ONLY)
    late = [visit(ana, other, at=9000), visit(cat, other, at=9000, dwell=3000)]

    first = realtime_apply(event_id=event.pk, interaction_ids=[i.pk for i in late])
    again = realtime_apply(event_id=event.pk, interaction_ids=[i.pk for i in late])
    found = get_backend("local").candidates(event=event, attendee=cat, limit=5)

    assert (first, again) == (2, 0)  # the room's members: ana and cat; bob's row is untouched
    live = live_list(version.pk, cat.pk)
    assert live["items"] == [[ana.pk, 1.0], [bob.pk, 0.0]]  # bob: the filler
    assert [(c.attendee_id, c.score) for c in found] == [(ana.pk, 1.0)]
    assert found[0].reasons[0].text == "you both spent 10 min in 'Late room' at the same time"


def test_a_web_process_serves_the_workers_live_list_with_its_reasons():
    """The Celery worker applies the update to its model; a web process holds only the published
    artifact (without cat, who joined after training). It still serves cat the live list with the
    worker's reasons, and for dan explains the new pair with the worker's reason and the old one
    from the artifact."""
    event = EventFactory()
    dan, eve = (AttendeeFactory(event=event) for _ in range(2))
    room = RoomFactory(event=event, name="Late room")
    visit(dan, room, dwell=600), visit(eve, room, dwell=600)
    train_event_now(event=event, config=DIRECT_ONLY)
    cat = AttendeeFactory(event=event)  # registered after training
    late = visit(cat, room, at=0, dwell=1200)
    realtime_apply(event_id=event.pk, interaction_ids=[late.pk])  # "in the worker"

    forget_loaded_models()  # "in a web process": a fresh copy of the published artifact
    assert loaded_model(published_version(event=event)).index_of(cat.pk) is None
    for_cat = get_backend("local").candidates(event=event, attendee=cat, limit=5)
    for_dan = get_backend("local").candidates(event=event, attendee=dan, limit=5)

    same_time = "you both spent 10 min in 'Late room' at the same time"
    assert {c.attendee_id: c.reasons[0].text for c in for_cat} == {dan.pk: same_time, eve.pk: same_time}
    assert {c.attendee_id: c.reasons[0].text for c in for_dan} == {cat.pk: same_time, eve.pk: same_time}
    live = live_list(published_version(event=event).pk, dan.pk)
    assert set(live["why"]) == {str(cat.pk)}  # the pair with eve came from the artifact


def test_live_reasons_carry_over_later_updates_and_a_fresh_worker_rebuilds_them():
    """The worker keeps the reasons it gave (it no longer reads its lists back from the cache):
    a later update that re-lists cat for dan without changing their pair keeps cat's reason; a
    worker that starts afresh gives the same reasons after catching up on everything since
    training."""
    event = EventFactory()
    dan, eve = (AttendeeFactory(event=event) for _ in range(2))
    room, hall = RoomFactory(event=event, name="Late room"), RoomFactory(event=event, name="Hall")
    visit(dan, room, dwell=600), visit(eve, room, dwell=600), visit(dan, hall, dwell=600)
    version = train_event_now(event=event, config=DIRECT_ONLY)
    cat, fay = AttendeeFactory(event=event), AttendeeFactory(event=event)
    realtime_apply(event_id=event.pk, interaction_ids=[visit(cat, room, dwell=1200).pk])
    realtime_apply(event_id=event.pk, interaction_ids=[visit(fay, hall, dwell=600).pk])  # dan's row, not cat's pair

    def why_for_dan():
        return live_list(version.pk, dan.pk)["why"]

    first = why_for_dan()
    assert set(first) == {str(cat.pk), str(fay.pk)}
    assert first[str(cat.pk)][0][1] == "you both spent 10 min in 'Late room' at the same time"
    assert first[str(fay.pk)][0][1] == "you both spent 10 min in 'Hall' at the same time"

    forget_loaded_models()  # a worker that starts afresh: the next update makes it catch up
    cache.delete_many([realtime_key(version.pk, dan.pk), realtime_why_key(version.pk, dan.pk)])
    realtime_apply(event_id=event.pk, interaction_ids=[visit(eve, hall, at=5000, dwell=60).pk])
    again = why_for_dan()
    assert set(again) == {str(cat.pk), str(fay.pk), str(eve.pk)}  # eve moved: her pair is explained too
    assert again[str(cat.pk)][0][1] == first[str(cat.pk)][0][1]
    assert again[str(fay.pk)][0][1] == first[str(fay.pk)][0][1]


def test_a_catch_up_writes_the_new_lists_before_it_explains_them(monkeypatch):
    """A batch that recomputes `Model.BULK_ROWS` rows or more (a worker catching up) publishes
    the lists first: while its pairs are being explained, the serving processes already read the
    new ranking. The reasons follow, as for a small batch."""
    event = EventFactory()
    ana, bob = (AttendeeFactory(event=event) for _ in range(2))
    room = RoomFactory(event=event, name="Atrium")
    visit(ana, room, dwell=600)
    version = train_event_now(event=event, config=DIRECT_ONLY)
    late = visit(bob, room, at=60, dwell=600)
    monkeypatch.setattr(Model, "BULK_ROWS", 2)
    seen_while_explaining = []
    render = realtime.render_pair_reasons

    def observing(loaded, pairs):
        seen_while_explaining.append(live_list(version.pk, ana.pk))
        return render(loaded, pairs)

    monkeypatch.setattr(realtime, "render_pair_reasons", observing)
    realtime_apply(event_id=event.pk, interaction_ids=[late.pk])
    assert seen_while_explaining[0]["items"] == [[bob.pk, 1.0]]
    assert seen_while_explaining[0]["why"] == {}  # not explained yet
    assert live_list(version.pk, ana.pk)["why"][str(bob.pk)][0][1].startswith("you both spent 10 min in 'Atrium'")


def test_context_names_come_from_the_loaded_version_for_a_minute(monkeypatch, django_assert_num_queries):
    """Explaining names the rooms once a minute, not on every real-time step and request: a
    second explanation asks the database nothing; a renamed room shows once its name is older
    than NAMES_SECONDS."""
    event = EventFactory()
    ana, bob = (AttendeeFactory(event=event) for _ in range(2))
    room = RoomFactory(event=event, name="Atrium")
    visit(ana, room, dwell=600), visit(bob, room, dwell=600)
    loaded = loaded_model(train_event_now(event=event, config=DIRECT_ONLY))
    pair = (loaded.index_of(ana.pk), loaded.index_of(bob.pk))

    def text():
        return reasons.render_pair_reasons(loaded, [pair])[pair][0].text

    assert "'Atrium'" in text()
    room.name = "Great Hall"
    room.save()
    with django_assert_num_queries(0):
        assert "'Atrium'" in text()
    monkeypatch.setattr(reasons, "NAMES_SECONDS", 0)
    assert "'Great Hall'" in text()


def test_interactions_signal_receiver_updates_the_live_model():
    event = EventFactory()
    ana, bob = (AttendeeFactory(event=event) for _ in range(2))
    room = RoomFactory(event=event)
    visit(ana, room)
    version = train_event_now(event=event, config=DIRECT_ONLY)
    late = visit(bob, room, at=60)

    interactions_push(event_id=event.pk, interaction_ids=[late.pk])

    assert live_list(version.pk, bob.pk)["items"] == [[ana.pk, 1.0]]
