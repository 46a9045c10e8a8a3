"""The snapshot: exact figures on hand-checked data, and a query count that does not grow."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.charts import EMPTY_TEXT, interactions_chart_svg, nice_ceiling
from dashboard.selectors import (
    FALLBACK_NO_BATCH,
    FALLBACK_NO_MODEL,
    LOWER_THE_CAP,
    NOTHING_SERVING,
    dashboard_snapshot,
    serving_source,
)
from events.enums import InteractionType, Phase
from events.models import Attendee, Interaction, RoomVisit
from recommendations.models import BatchRecommendation, FunnelEvent, ModelVersion, TrainingRun
from tests.factories import (
    LIVE_START,
    AttendeeFactory,
    ContentFactory,
    EventFactory,
    InteractionFactory,
    RoomFactory,
)

pytestmark = pytest.mark.django_db

NOW = LIVE_START + timedelta(hours=2)


@pytest.fixture
def small():
    """Three attendees, two rooms, one content item; five interactions; one open visit that
    counts and one whose heartbeats stopped."""
    event = EventFactory(qualifying_threshold=4, min_active_contexts=3)
    a, b, c = (AttendeeFactory(event=event, display_name=n) for n in "abc")
    r1 = RoomFactory(event=event, name="Keynote")
    r2 = RoomFactory(event=event, name="Workshop")
    c1 = ContentFactory(event=event, title="Talk video")
    at = LIVE_START
    InteractionFactory(attendee=a, room=r1, value=120, occurred_at=at + timedelta(minutes=10))
    InteractionFactory(attendee=b, room=r1, value=600, occurred_at=at + timedelta(minutes=20))
    InteractionFactory(attendee=c, room=r2, value=30, qualifies=False, occurred_at=at + timedelta(minutes=30))
    for who, value, ago in ((a, 300, 2), (b, 60, 1)):
        InteractionFactory(
            attendee=who,
            room=None,
            content=c1,
            type=InteractionType.VIEW_CONTENT,
            value=value,
            occurred_at=NOW - timedelta(minutes=ago),
        )
    RoomVisit.objects.create(event=event, attendee=c, room=r2, joined_at=NOW - timedelta(minutes=10))
    RoomVisit.objects.create(
        event=event,
        attendee=a,
        room=r1,
        joined_at=NOW - timedelta(minutes=20),
        expects_heartbeats=True,
        last_heartbeat_at=NOW - timedelta(minutes=5),
    )
    return event


def test_snapshot_engagement_figures_on_hand_checked_data(small):
    e = dashboard_snapshot(event=small, now=NOW)["engagement"]
    assert (e["total"], e["qualifying"], e["not_qualifying"]) == (5, 4, 1)
    assert e["per_minute_now"] == 0.4  # 2 interactions in the last 5 minutes
    assert e["active_now"] == 3  # c in a room; a and b acted in the last 5 minutes
    assert e["occupancy"] == [{"room": "Workshop", "people": 1}]  # a's visit lost its heartbeats
    assert e["top_rooms"] == [
        {"name": "Keynote", "dwell_minutes": 12, "people": 2},
        {"name": "Workshop", "dwell_minutes": 0, "people": 1},
    ]
    assert e["top_content"] == [{"name": "Talk video", "dwell_minutes": 6, "people": 2}]


def test_snapshot_chart_has_one_point_per_minute_from_live_start_to_now(small):
    chart = dashboard_snapshot(event=small, now=NOW)["engagement"]["chart"]
    assert chart["bucket_minutes"] == 1
    assert len(chart["points"]) == 121  # 09:00 .. 11:00 inclusive
    assert sum(p["count"] for p in chart["points"]) == 5
    by_at = {p["at"]: p for p in chart["points"]}
    assert by_at[(LIVE_START + timedelta(minutes=30)).isoformat()] == {
        "at": (LIVE_START + timedelta(minutes=30)).isoformat(),
        "count": 1,
        "qualifying": 0,
        "per_minute": 1.0,
        "qualifying_per_minute": 0.0,
    }


def test_snapshot_chart_buckets_widen_over_a_long_window(small):
    chart = dashboard_snapshot(event=small, now=LIVE_START + timedelta(hours=8, minutes=2))["engagement"]["chart"]
    assert chart["bucket_minutes"] == 5  # 482 min / 180 buckets -> 2.7 -> the next nice width
    assert len(chart["points"]) == 97
    assert chart["points"][2] == {  # 09:10-09:15 holds one interaction: 1 in 5 minutes
        "at": (LIVE_START + timedelta(minutes=10)).isoformat(),
        "count": 1,
        "qualifying": 1,
        "per_minute": 0.2,
        "qualifying_per_minute": 0.2,
    }


def test_snapshot_readiness_counts_against_the_event_settings(small):
    r = dashboard_snapshot(event=small, now=NOW)["readiness"]
    assert (r["qualifying"], r["threshold"], r["qualifying_progress"]) == (4, 4, 1.0)
    # Keynote (2 qualifying) and the talk video (2); the workshop's only visit does not qualify.
    assert (r["active_contexts"], r["min_active_contexts"]) == (2, 3)
    assert r["contexts_progress"] == pytest.approx(2 / 3)
    assert (r["phase"], r["serving"]["source"]) == ("cold", "rules")


def test_snapshot_models_runs_and_funnel(small):
    ModelVersion.objects.create(
        event=small,
        number=1,
        status=ModelVersion.Status.KEPT,
        not_published_reason="recall_at_10 0.01 < the rules engine's 0.02",
        input_fingerprint="a",
        metrics={"recall_at_10": 0.01, "baseline_recall_at_10": 0.02, "k": 10, "split": "time"},
        training_seconds=1.234,
        artifact_bytes=2048,
    )
    TrainingRun.objects.create(
        event=small, status=TrainingRun.Status.RUNNING, progress=0.5, steps=[{"name": "fit", "status": "running"}]
    )
    a, b, c = Attendee.objects.filter(event=small).order_by("display_name")
    for stage, n in (("shown", 4), ("opened", 2), ("requested", 1)):
        for _ in range(n):
            FunnelEvent.objects.create(event=small, viewer=a, suggested=b, stage=stage, source="rules")
    FunnelEvent.objects.create(event=small, viewer=a, suggested=c, stage="shown", source="local")
    snap = dashboard_snapshot(event=small, now=NOW)
    (version,) = snap["models"]
    assert version["metrics"] == [
        {"name": "recall_at_10", "value": 0.01, "reference": {"label": "rules", "value": 0.02}}
    ]
    assert (version["published"], version["training_seconds"], version["artifact_bytes"]) == (False, 1.23, 2048)
    (run,) = snap["runs"]
    assert (run["active"], run["progress"], run["steps"]) == (True, 0.5, [{"name": "fit", "status": "running"}])
    assert snap["funnel"]["by_source"] == [
        {"source": "local", "label": "Local model", **STAGES_ZERO, "shown": 1},
        {"source": "rules", "label": "Rules engine", **STAGES_ZERO, "shown": 4, "opened": 2, "requested": 1},
    ]
    assert snap["funnel"]["total"] == {**STAGES_ZERO, "shown": 5, "opened": 2, "requested": 1}


STAGES_ZERO = {"shown": 0, "opened": 0, "requested": 0, "accepted": 0, "booked": 0, "held": 0}


def test_meetings_on_the_dashboard_booked_held_per_hour_of_the_events_zone_and_share_of_attendees(small):
    from datetime import UTC, datetime

    from events.enums import MeetingStatus
    from events.models import Meeting

    small.timezone = "Europe/Paris"
    small.save()
    a, b, c = Attendee.objects.filter(event=small).order_by("display_name")
    nine = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    for who, other, start, held in ((a, b, nine, True), (a, c, nine + timedelta(minutes=15), False)):
        Meeting.objects.create(
            event=small,
            requester=who,
            recipient=other,
            proposed_by=who,
            status=MeetingStatus.BOOKED,
            starts_at=start,
            ends_at=start + timedelta(minutes=15),
            held_at=start if held else None,
        )
    Meeting.objects.create(event=small, requester=b, recipient=c, proposed_by=b, status=MeetingStatus.CANCELLED)
    assert dashboard_snapshot(event=small, now=NOW)["meetings"] == {
        "booked": 2,
        "held": 1,
        "per_hour": [{"hour": "2026-12-07T09:00:00+01:00", "booked": 2, "held": 1}],
        "attendees_with_meeting": 3,
        "share_with_meeting": 1.0,
    }


def test_a_versions_row_says_how_it_ranks_for_this_event(small):
    ranker = {
        "name": "learned (face-to-face)",
        "kind": "learned",
        "reason": "learned (face-to-face) beats the obvious lists on the event's own later activity: ...",
        "importance": {"repeat meetings": 0.41, "people met in common": 0.3, "sociability": 0.29},
    }
    ModelVersion.objects.create(
        event=small,
        number=1,
        status=ModelVersion.Status.PUBLISHED,
        input_fingerprint="a",
        metrics={
            "precision_at_10": 0.15,
            "popularity_precision_at_10": 0.05,
            "repeat_popularity_precision_at_10": 0.14,
            "new_recall_at_10": 0.1,
            "popularity_new_recall_at_10": 0.07,
            "repeat_popularity_new_recall_at_10": 0.06,
            "evaluated": 271,
            "ranker": ranker,
        },
    )
    (version,) = dashboard_snapshot(event=small, now=NOW)["models"]
    assert version["ranker"] == {
        "name": "learned (face-to-face)",
        "kind": "learned for this event",
        "weights": "for this event: repeat meetings 0.41, people met in common 0.30, sociability 0.29",
        "reason": ranker["reason"],
    }
    # each figure beside the best of the obvious lists on the same split
    assert version["metrics"] == [
        {"name": "new_recall_at_10", "value": 0.1, "reference": {"label": "popularity", "value": 0.07}},
        {"name": "precision_at_10", "value": 0.15, "reference": {"label": "repeat + popularity", "value": 0.14}},
    ]


def test_exposure_share_of_the_most_suggested_one_percent():
    event = EventFactory()
    people = Attendee.objects.bulk_create(
        Attendee(event=event, external_id=f"p{i}", display_name=f"P{i}") for i in range(150)
    )
    viewer = people[-1]
    # 150 attendees -> the top 1% is 2 people; they get 6 + 3 of the 10 suggestions shown.
    for target, times in ((people[0], 6), (people[1], 3), (people[2], 1)):
        FunnelEvent.objects.bulk_create(
            FunnelEvent(event=event, viewer=viewer, suggested=target, stage="shown", source="rules")
            for _ in range(times)
        )
    exposure = dashboard_snapshot(event=event, now=NOW)["exposure"]
    assert exposure == {
        "attendees": 150,
        "shown": 10,
        "top_n": 2,
        "top_shown": 9,
        "top_share": 0.9,
        "even_share": 0.01,
        "distinct_suggested": 3,
        "cap_share": 0.05,
        # 90 % to the top 1 %: the card says what to do about it
        "advice": LOWER_THE_CAP.format(cap="5%", suggested="2.5%"),
    }


def test_exposure_is_none_before_anything_is_shown():
    exposure = dashboard_snapshot(event=EventFactory(), now=NOW)["exposure"]
    assert (exposure["shown"], exposure["top_share"], exposure["attendees"]) == (0, None, 0)


def test_serving_source_follows_the_phase_chain_and_its_fallbacks():
    event = EventFactory(phase=Phase.LIVE, backend="local")
    assert serving_source(event=event, published=None, batch_lists=0) == {
        "source": "rules",
        "label": "Rules engine",
        "fallback": FALLBACK_NO_MODEL.format(wanted="Local model"),
        "chain": ["local", "rules"],
    }
    version = ModelVersion(event=event, number=2, backend="local", status=ModelVersion.Status.PUBLISHED)
    assert serving_source(event=event, published=version, batch_lists=0)["label"] == "Local model v2"
    event.phase = Phase.ON_DEMAND
    assert serving_source(event=event, published=None, batch_lists=3)["source"] == "batch"
    assert serving_source(event=event, published=version, batch_lists=0)["fallback"] == FALLBACK_NO_BATCH
    event.phase = Phase.CLOSED
    assert serving_source(event=event, published=version, batch_lists=0)["label"] == NOTHING_SERVING


def _populate(event, *, attendees: int, interactions_each: int):
    rooms = [RoomFactory(event=event) for _ in range(3)]
    content = ContentFactory(event=event)
    people = Attendee.objects.bulk_create(
        Attendee(event=event, external_id=f"x{i}", display_name=f"X{i}") for i in range(attendees)
    )
    rows = []
    for i, person in enumerate(people):
        for j in range(interactions_each):
            on_room = j % 2 == 0
            rows.append(
                Interaction(
                    event=event,
                    attendee=person,
                    room=rooms[(i + j) % 3] if on_room else None,
                    content=None if on_room else content,
                    type=InteractionType.JOIN_ROOM if on_room else InteractionType.VIEW_CONTENT,
                    value=90,
                    qualifies=True,
                    occurred_at=LIVE_START + timedelta(minutes=(i + 7 * j) % 110),
                    client_event_id=f"{i}-{j}",
                )
            )
    Interaction.objects.bulk_create(rows)
    RoomVisit.objects.bulk_create(
        RoomVisit(event=event, attendee=p, room=rooms[k % 3], joined_at=NOW - timedelta(minutes=3))
        for k, p in enumerate(people)
    )
    for n in (1, 2):
        ModelVersion.objects.create(event=event, number=n, input_fingerprint=str(n), status="kept")
        TrainingRun.objects.create(event=event)
    BatchRecommendation.objects.bulk_create(
        BatchRecommendation(event=event, attendee=p, computed_at=NOW, items=[]) for p in people
    )
    FunnelEvent.objects.bulk_create(
        FunnelEvent(event=event, viewer=people[0], suggested=p, stage=stage, source=source)
        for p in people
        for stage in ("shown", "opened")
        for source in ("rules", "local")
    )


def test_snapshot_query_count_does_not_grow_with_attendees_or_interactions():
    counts = []
    for attendees, each in ((3, 2), (60, 20)):
        event = EventFactory()
        _populate(event, attendees=attendees, interactions_each=each)
        event = type(event).objects.select_related("organization").get(pk=event.pk)
        with CaptureQueriesContext(connection) as queries:
            snapshot = dashboard_snapshot(event=event, now=NOW)
        assert snapshot["engagement"]["total"] == attendees * each
        counts.append(len(queries))
    # PostgreSQL buckets the chart with date_bin and ranks the funnel in one CTE; the portable path
    # (SQLite, the embedded default) reads those in one query more. Either way: flat. (Two of them
    # are the meetings card: booked per hour, and the people in them.)
    assert counts == ([15, 15] if connection.vendor == "postgresql" else [16, 16])


def test_chart_svg_scales_to_a_nice_maximum_and_says_when_empty():
    assert [nice_ceiling(v) for v in (0, 0.7, 3, 17, 240)] == [1.0, 1.0, 5, 20, 250]
    points = [
        {
            "at": (LIVE_START + timedelta(minutes=i)).isoformat(),
            "count": c,
            "qualifying": c,
            "per_minute": c,
            "qualifying_per_minute": c,
        }
        for i, c in enumerate([0, 4, 17])
    ]
    svg = interactions_chart_svg(points=points, tz="Europe/Paris", bucket_minutes=1)
    assert 'data-total="21"' in svg
    assert ">20</text>" in svg  # the top gridline of a 17-per-minute peak
    assert ">11:00</text>" in svg  # 09:00 UTC in Paris (summer time)
    empty = interactions_chart_svg(points=[], tz="UTC", bucket_minutes=None)
    assert EMPTY_TEXT in empty
