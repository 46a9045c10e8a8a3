"""The exposure cap, pure (whole table) and online (one list at a time, cache counters)."""

import pytest

from recommendations.serving.exposure import apply_exposure_cap, exposure_cap_count
from recommendations.serving.lists import recommendations_for

from . import backends
from .factories import ServingEventFactory, attendees


def test_cap_count_is_share_of_lists_at_least_one():
    assert exposure_cap_count(share=0.05, n_lists=100) == 5
    assert exposure_cap_count(share=0.05, n_lists=10) == 1
    assert exposure_cap_count(share=0.5, n_lists=5) == 2


def test_apply_cap_demotes_the_popular_candidate():
    # Everyone ranks "star" first; with 4 lists and a share of 0.5, star may be in 2.
    lists = {"v1": ["star", "x1", "y1"], "v2": ["star", "x2", "y2"], "v3": ["star", "x3"], "v4": ["star", "x4"]}
    out = apply_exposure_cap(lists, 0.5, k=2)
    assert out == {"v1": ["star", "x1"], "v2": ["star", "x2"], "v3": ["x3", "star"], "v4": ["x4", "star"]}


def test_apply_cap_demotes_behind_alternatives_when_there_are_enough():
    lists = {"v1": ["star", "a", "b"], "v2": ["star", "c", "d"], "v3": ["star", "e", "f"]}
    out = apply_exposure_cap(lists, 0.34, k=2)  # cap 1 list
    assert out == {"v1": ["star", "a"], "v2": ["c", "d"], "v3": ["e", "f"]}
    assert sum("star" in items for items in out.values()) == 1


def test_apply_cap_overfull_table_spreads_excess_over_least_exposed():
    # Four lists, one slot each, two candidates: the cap of one list cannot hold; the excess goes
    # to whichever is least exposed, not always to the first-ranked.
    lists = {v: ["a", "b"] for v in ("v1", "v2", "v3", "v4")}
    assert apply_exposure_cap(lists, 0.01, k=1) == {"v1": ["a"], "v2": ["b"], "v3": ["a"], "v4": ["b"]}


def test_apply_cap_share_one_changes_nothing():
    lists = {"v1": ["a", "b", "c"], "v2": ["a", "b", "d"]}
    assert apply_exposure_cap(lists, 1.0, k=3) == {"v1": ["a", "b", "c"], "v2": ["a", "b", "d"]}


def test_apply_cap_never_shortens_a_list():
    lists = {"v1": ["a"], "v2": ["a"], "v3": ["a"]}
    assert apply_exposure_cap(lists, 0.01, k=10) == {"v1": ["a"], "v2": ["a"], "v3": ["a"]}


@pytest.mark.django_db
def test_online_cap_demotes_over_exposed_candidate():
    # 49 attendees receive lists; a share of 0.041 lets one attendee into floor(2.009) = 2 of them.
    event = ServingEventFactory(exposure_cap_share=0.041)
    star = attendees(event, 1)[0]
    viewers = attendees(event, 4)
    for viewer in viewers:
        # Each viewer ranks the star first, then eleven candidates of their own: more than the
        # ten counted slots, so a demoted star has somewhere to go.
        private = attendees(event, 11)
        backends.SCORES.setdefault("local", {})[viewer.pk] = [(star.pk, 10.0)] + [
            (p.pk, 1.0 / (i + 1)) for i, p in enumerate(private)
        ]
    results = [recommendations_for(attendee=viewer, num_results=11) for viewer in viewers]
    assert [r.items[0].attendee_id == star.pk for r in results] == [True, True, False, False]
    # Demoted, not dropped: behind the ten counted slots.
    assert [[i.attendee_id for i in r.items].index(star.pk) for r in results] == [0, 0, 10, 10]


@pytest.mark.django_db
def test_online_cap_recomputing_a_list_does_not_count_twice():
    event = ServingEventFactory(exposure_cap_share=0.25)  # 4 viewers -> 1 list
    viewer, star, other, _third = attendees(event, 4)
    backends.SCORES["local"] = {viewer.pk: [(star.pk, 10.0), (other.pk, 1.0)]}
    for _ in range(3):
        result = recommendations_for(attendee=viewer, num_results=1, use_cache=False)
        assert [item.attendee_id for item in result.items] == [star.pk]


@pytest.mark.django_db
def test_online_fill_takes_least_exposed_demoted_after_uncapped():
    from recommendations.serving.exposure import exposure_demote

    event = ServingEventFactory(exposure_cap_share=0.2)  # 6 viewers -> 1 list each
    v1, v2, v3, star, other, fresh = attendees(event, 6)
    assert exposure_demote(event=event, viewer_id=v1.pk, ranked_ids=[star.pk, other.pk], k=2) == [star.pk, other.pk]
    # Over the cap already, but v3 has nobody else: the star fills (now in 2 lists, other in 1).
    assert exposure_demote(event=event, viewer_id=v3.pk, ranked_ids=[star.pk], k=1) == [star.pk]
    # v2: one uncapped candidate first, then the less exposed of the two capped ones.
    assert exposure_demote(event=event, viewer_id=v2.pk, ranked_ids=[star.pk, other.pk, fresh.pk], k=2) == [
        fresh.pk,
        other.pk,
        star.pk,
    ]
