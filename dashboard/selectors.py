"""What the organizer's dashboard shows, read with a fixed number of aggregate queries.

Every figure is a COUNT, a SUM or a GROUP BY with a LIMIT over the event's rows, so the number of
queries, and the number of rows they return, stays the same whether the event has 30 attendees or
30,000 (tests/dashboard/test_snapshot.py counts them at two sizes). The page re-reads this
snapshot whenever the organizers' WebSocket group says that something moved; a push is only a
hint, this is the truth.

The snapshot is plain JSON-ready data (numbers, strings, ISO dates); the view adds the rendered
chart. Times are UTC ISO strings: the page shows them in the event's time zone.
"""

import math
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from events.enums import MeetingStatus, Phase
from events.models import Attendee, Event, Interaction, Meeting, PhaseTransition, RoomVisit
from events.presence import HEARTBEAT_TIMEOUT
from recommendations.backends.popularity import served_as
from recommendations.jobs.phases import active_context_count
from recommendations.models import BatchRecommendation, FunnelEvent, ModelVersion, TrainingRun
from recommendations.serving.lists import SOURCE_BATCH, SOURCE_LOCAL, SOURCE_RULES, source_chain

# "Active now": in a room now, or did anything in the last few minutes (a content view sent by a
# platform has no open visit, but its viewer is clearly here).
ACTIVE_WINDOW = timedelta(minutes=5)
# The chart aims at about this many buckets: enough to show the shape of a day, few enough to
# draw crisply in a card; the bucket is the smallest "nice" width that gets there.
CHART_TARGET_BUCKETS = 180
NICE_BUCKET_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440]
TOP_N = 5
OCCUPANCY_ROOMS = 8
MODEL_VERSIONS_SHOWN = 6
RUNS_SHOWN = 6
# Exposure evenness: the share of all suggestions shown that went to the most-suggested 1%.
EXPOSURE_TOP_SHARE = 0.01
ACTIVE_RUN_STATUSES = (TrainingRun.Status.PENDING, TrainingRun.Status.RUNNING)
FUNNEL_STAGES = [s.value for s in FunnelEvent.Stage]

SOURCE_LABELS = {
    "rules": "Rules engine",
    "local": "Local model",
    "personalize": "Amazon Personalize",
    "batch": "Batch table",
    "popularity": "Most active attendees",
}
NOTHING_SERVING = "Nothing: the event is closed and has no batch table."
FALLBACK_NO_MODEL = "{wanted} has no published model yet"
FALLBACK_NO_BATCH = "no batch table yet"


@dataclass(frozen=True)
class ChartWindow:
    start: datetime
    end: datetime
    bucket_minutes: int


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def chart_window(*, event: Event, first: datetime | None, last: datetime | None, now: datetime) -> ChartWindow | None:
    """From the start of the live window (or the first interaction) to now, or to the end of the
    live window once it is over (later on-demand activity extends it); None before anything."""
    start = event.live_starts_at or first
    if start is None:
        return None
    end = now
    if event.live_ends_at is not None and event.live_ends_at < now:
        end = max(event.live_ends_at, last or event.live_ends_at)
    if end <= start:
        return None
    span_minutes = (end - start).total_seconds() / 60
    bucket = next((m for m in NICE_BUCKET_MINUTES if span_minutes / m <= CHART_TARGET_BUCKETS), NICE_BUCKET_MINUTES[-1])
    return ChartWindow(start=start, end=end, bucket_minutes=bucket)


def _series(*, event: Event, window: ChartWindow) -> list[dict]:
    """Interactions per minute over the window, one point per bucket (empty buckets included)."""
    sql = """
        SELECT date_bin(%s::interval, occurred_at, %s) AS bucket,
               count(*) AS n,
               count(*) FILTER (WHERE qualifies) AS q
        FROM events_interaction
        WHERE event_id = %s AND occurred_at >= %s AND occurred_at <= %s
        GROUP BY bucket
    """
    step = timedelta(minutes=window.bucket_minutes)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, [f"{window.bucket_minutes} minutes", window.start, event.pk, window.start, window.end])
            found = {bucket: (n, q) for bucket, n, q in cursor.fetchall()}
    else:
        found = _series_counts_portable(event=event, window=window, step=step)
    points = []
    at = window.start
    while at <= window.end:
        n, q = found.get(at, (0, 0))
        # The last bucket is still filling: its rate is over the minutes it has had so far, or the
        # line would dip at "now" every time.
        minutes = min(window.bucket_minutes, max(1.0, (window.end - at).total_seconds() / 60))
        points.append(
            {
                "at": at.isoformat(),
                "count": n,
                "qualifying": q,
                "per_minute": round(n / minutes, 2),
                "qualifying_per_minute": round(q / minutes, 2),
            }
        )
        at += step
    return points


def _series_counts_portable(*, event: Event, window: ChartWindow, step: timedelta) -> dict:
    """The same buckets for the embedded default (SQLite has no date_bin): one query, bucketed
    here. The embedded default runs one small event, so reading its timestamps is cheap."""
    found: dict = {}
    rows = Interaction.objects.filter(
        event=event, occurred_at__gte=window.start, occurred_at__lte=window.end
    ).values_list("occurred_at", "qualifies")
    for occurred_at, qualifies in rows.iterator(chunk_size=5000):
        bucket = window.start + step * ((occurred_at - window.start) // step)
        n, q = found.get(bucket, (0, 0))
        found[bucket] = (n + 1, q + (1 if qualifies else 0))
    return found


# The top contexts by total dwell first (a plain hash aggregate), then the reach (distinct
# attendees) of those few only: COUNT(DISTINCT) over every context sorts every group and costs
# about twice as much on a large event (benchmarks/dashboard_snapshot.py). Names are joined to the
# top rows only.
_TOP_BY_DWELL_SQL = """
    WITH top AS (
        SELECT {column} AS ctx, coalesce(sum(value), 0) AS dwell
        FROM events_interaction
        WHERE event_id = %s AND {column} IS NOT NULL
        GROUP BY {column}
        ORDER BY dwell DESC, {column}
        LIMIT %s
    )
    SELECT c.{name}, top.dwell,
           (SELECT count(DISTINCT i.attendee_id) FROM events_interaction i
            WHERE i.event_id = %s AND i.{column} = top.ctx)
    FROM top JOIN {table} c ON c.id = top.ctx
    ORDER BY top.dwell DESC, c.{name}
"""


def _top_by_dwell(*, event: Event, column: str, table: str, name: str) -> list[dict]:
    """The TOP_N contexts of one kind by total dwell, with how many attendees they reached."""
    sql = _TOP_BY_DWELL_SQL.format(column=column, table=table, name=name)  # identifiers from this module only
    with connection.cursor() as cursor:
        cursor.execute(sql, [event.pk, TOP_N, event.pk])
        rows = cursor.fetchall()
    return [{"name": n, "dwell_minutes": round(dwell / 60), "people": people} for n, dwell, people in rows]


def _engagement(*, event: Event, now: datetime) -> dict:
    interactions = Interaction.objects.filter(event=event)
    totals = interactions.aggregate(
        total=Count("id"),
        qualifying=Count("id", filter=Q(qualifies=True)),
        recent=Count("id", filter=Q(occurred_at__gt=now - ACTIVE_WINDOW, occurred_at__lte=now)),
        first=Min("occurred_at"),
        last=Max("occurred_at"),
    )
    open_visits = RoomVisit.objects.filter(event=event, joined_at__isnull=False, left_at__isnull=True).filter(
        # A browser whose heartbeats stopped is gone even before the sweeper closes its visit.
        Q(expects_heartbeats=False) | Q(last_heartbeat_at__gte=now - HEARTBEAT_TIMEOUT)
    )
    recent_actors = interactions.filter(occurred_at__gt=now - ACTIVE_WINDOW, occurred_at__lte=now)
    active_now = (
        open_visits.values("attendee_id").order_by().union(recent_actors.values("attendee_id").order_by()).count()
    )
    occupancy = list(
        open_visits.values("room_id", "room__name")
        .annotate(people=Count("attendee_id", distinct=True))
        .order_by("-people", "room__name")[:OCCUPANCY_ROOMS]
    )
    top_rooms = _top_by_dwell(event=event, column="room_id", table="events_room", name="name")
    top_content = _top_by_dwell(event=event, column="content_id", table="events_content", name="title")
    window = chart_window(event=event, first=totals["first"], last=totals["last"], now=now)
    series = _series(event=event, window=window) if window else []
    return {
        "total": totals["total"],
        "qualifying": totals["qualifying"],
        "not_qualifying": totals["total"] - totals["qualifying"],
        "per_minute_now": round(totals["recent"] / (ACTIVE_WINDOW.total_seconds() / 60), 1),
        "active_now": active_now,
        "occupancy": [{"room": r["room__name"], "people": r["people"]} for r in occupancy],
        "top_rooms": top_rooms,
        "top_content": top_content,
        "chart": {
            "bucket_minutes": window.bucket_minutes if window else None,
            "start": _iso(window.start) if window else None,
            "end": _iso(window.end) if window else None,
            "points": series,
        },
    }


def serving_source(*, event: Event, published: ModelVersion | None, batch_lists: int) -> dict:
    """The source that answers now: the first of the phase's chain that can, as serving does
    (a backend without a published model raises `Unavailable` and the next one answers)."""
    chain = source_chain(event=event, phase=event.phase)
    skipped = []
    for source in chain:
        if source == SOURCE_RULES:
            break
        if source == SOURCE_BATCH:
            if batch_lists:
                break
            skipped.append(FALLBACK_NO_BATCH)
            continue
        if published is not None and published.backend == source:
            break
        skipped.append(FALLBACK_NO_MODEL.format(wanted=SOURCE_LABELS.get(source, source)))
    else:
        return {"source": "", "label": NOTHING_SERVING, "fallback": "; ".join(skipped), "chain": chain}
    if source == SOURCE_LOCAL and published is not None:
        source = served_as(published)  # the event's own split may have chosen the popularity baseline
    label = SOURCE_LABELS.get(source, source)
    if source not in (SOURCE_RULES, SOURCE_BATCH) and published is not None:
        label = f"{label} v{published.number}"
    return {"source": source, "label": label, "fallback": "; ".join(skipped), "chain": chain}


def _readiness(*, event: Event, qualifying: int, published: ModelVersion | None, batch: dict) -> dict:
    transition = PhaseTransition.objects.filter(event=event).order_by("-at", "-id").first()
    contexts = active_context_count(event=event)
    return {
        "qualifying": qualifying,
        "threshold": event.qualifying_threshold,
        "qualifying_progress": min(1.0, qualifying / event.qualifying_threshold) if event.qualifying_threshold else 1.0,
        "active_contexts": contexts,
        "min_active_contexts": event.min_active_contexts,
        "contexts_progress": (min(1.0, contexts / event.min_active_contexts) if event.min_active_contexts else 1.0),
        "phase": event.phase,
        "phase_label": Phase(event.phase).label,
        "phase_changed_at": _iso(event.phase_changed_at),
        "phase_cause": transition.cause if transition else "",
        "serving": serving_source(event=event, published=published, batch_lists=batch["n"]),
        "batch_lists": batch["n"],
        "batch_computed_at": _iso(batch["at"]),
    }


# Counts and settings stored beside the metrics, not metrics themselves.
NOT_METRICS = {"k", "evaluated", "evaluated_new", "split", "baseline", "ranker"}
# Prefixes under which a fit stores the same metric for a reference: the publish gate's baseline
# (named by the "baseline" entry, the rules engine when absent) and the obvious lists the local
# model is chosen against (`recommendations.backends.local.fit.ranker_metrics`). The best reference is shown.
REFERENCE_PREFIXES = {"baseline_": "rules", "popularity_": "popularity", "repeat_popularity_": "repeat + popularity"}


def headline_metrics(metrics: dict) -> list[dict]:
    """Each numeric offline metric with its best reference beside it (e.g. new recall@10 0.10,
    popularity 0.07)."""
    out = []
    for name, value in sorted(metrics.items()):
        if name in NOT_METRICS or any(name.startswith(p) for p in REFERENCE_PREFIXES):
            continue
        if not isinstance(value, int | float):
            continue
        references = [
            {
                "label": metrics.get("baseline", label) if p == "baseline_" else label,
                "value": round(metrics[p + name], 4),
            }
            for p, label in REFERENCE_PREFIXES.items()
            if isinstance(metrics.get(p + name), int | float)
        ]
        reference = max(references, key=lambda r: r["value"]) if references else None
        out.append({"name": name, "value": round(value, 4), "reference": reference})
    return out


RANKER_KINDS = {
    "learned": "learned for this event",
    "baseline": "the obvious list won on this event",
    "prior": "too little data to learn: configured settings",
    "fixed": "fixed settings",
}


def ranker_summary(metrics: dict) -> dict | None:
    """How the version ranks, for its row: what was chosen, why, and for a learned ranking each
    feature's share ("for this event: repeat meetings 0.41, people met in common 0.30, ...")."""
    ranker = metrics.get("ranker")
    if not isinstance(ranker, dict):
        return None
    # largest first (PostgreSQL's jsonb does not keep the order the shares were stored in)
    importance = sorted((ranker.get("importance") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    shares = ", ".join(f"{label} {share:.2f}" for label, share in importance)
    return {
        "name": ranker.get("name", ""),
        "kind": RANKER_KINDS.get(ranker.get("kind", ""), ranker.get("kind", "")),
        "weights": f"for this event: {shares}" if shares else "",
        "reason": ranker.get("reason", ""),
    }


def _version(v: ModelVersion, *, event: Event) -> dict:
    return {
        "number": v.number,
        "backend": v.backend,
        "created_at": _iso(v.created_at),
        "training_seconds": round(v.training_seconds, 2),
        "artifact_bytes": v.artifact_bytes,
        "metrics": headline_metrics(v.metrics),
        "ranker": ranker_summary(v.metrics),
        "n_attendees": v.n_attendees,
        "n_interactions": v.n_interactions,
        "status": v.status,
        "status_label": v.get_status_display(),
        "published": v.status == ModelVersion.Status.PUBLISHED,
        "not_published_reason": v.not_published_reason,
        # An organizer may serve it by hand (publish, or roll back to it): a local version of the
        # event's own backend that is not serving (`dashboard.services.dashboard_publish`).
        "publishable": v.status != ModelVersion.Status.PUBLISHED and v.backend == event.backend == "local",
    }


def _run(r: TrainingRun) -> dict:
    return {
        "id": r.pk,
        "kind": r.kind,
        "kind_label": r.get_kind_display(),
        "status": r.status,
        "status_label": r.get_status_display(),
        "active": r.status in ACTIVE_RUN_STATUSES,
        "trigger": r.trigger,
        "progress": round(r.progress, 3),
        "steps": [{"name": s.get("name", ""), "status": s.get("status", "done")} for s in r.steps],
        "message": r.message,
        "created_at": _iso(r.created_at),
        "finished_at": _iso(r.finished_at),
    }


def _funnel(*, event: Event) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for row in FunnelEvent.objects.filter(event=event).values("source", "stage").annotate(n=Count("id")):
        counts.setdefault(row["source"], dict.fromkeys(FUNNEL_STAGES, 0))[row["stage"]] = row["n"]
    total = dict.fromkeys(FUNNEL_STAGES, 0)
    rows = []
    for source in sorted(counts):
        for stage in FUNNEL_STAGES:
            total[stage] += counts[source][stage]
        rows.append({"source": source, "label": SOURCE_LABELS.get(source, source), **counts[source]})
    return {"stages": FUNNEL_STAGES, "by_source": rows, "total": total}


def _meetings(*, event: Event, attendees: int) -> dict:
    """Booked meetings (held ones among them: both checked in), per hour of their start in the
    event's zone, and the share of attendees with at least one."""
    booked = Meeting.objects.filter(event=event, status=MeetingStatus.BOOKED)
    zone = zoneinfo.ZoneInfo(event.timezone)
    per_hour = list(
        booked.annotate(hour=TruncHour("starts_at", tzinfo=zone))
        .values("hour")
        .annotate(booked=Count("id"), held=Count("id", filter=Q(held_at__isnull=False)))
        .order_by("hour")
    )
    people = {pk for pair in booked.values_list("requester_id", "recipient_id") for pk in pair}
    return {
        "booked": sum(row["booked"] for row in per_hour),
        "held": sum(row["held"] for row in per_hour),
        "per_hour": [{"hour": _iso(row["hour"]), "booked": row["booked"], "held": row["held"]} for row in per_hour],
        "attendees_with_meeting": len(people),
        "share_with_meeting": round(len(people) / attendees, 4) if attendees else None,
    }


_EXPOSURE_SQL = """
    WITH per AS (
        SELECT suggested_id, count(*) AS n
        FROM recommendations_funnelevent
        WHERE event_id = %s AND stage = %s
        GROUP BY suggested_id
    ), ranked AS (
        SELECT n, row_number() OVER (ORDER BY n DESC, suggested_id) AS rn FROM per
    ), people AS (
        SELECT count(*) AS attendees FROM events_attendee WHERE event_id = %s
    )
    SELECT people.attendees,
           coalesce(sum(ranked.n), 0),
           coalesce(sum(ranked.n) FILTER (WHERE ranked.rn <= greatest(1, ceil(%s * people.attendees))), 0),
           count(ranked.n)
    FROM people LEFT JOIN ranked ON true
    GROUP BY people.attendees
"""


def _exposure(*, event: Event) -> dict:
    """How evenly suggestions are spread: perfectly even, the top 1% get 1% of them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_EXPOSURE_SQL, [event.pk, FunnelEvent.Stage.SHOWN, event.pk, EXPOSURE_TOP_SHARE])
            attendees, shown, top, distinct = cursor.fetchone()
    else:  # the embedded default: the same figures from two portable queries
        attendees = Attendee.objects.filter(event=event).count()
        per = sorted(
            FunnelEvent.objects.filter(event=event, stage=FunnelEvent.Stage.SHOWN)
            .values("suggested_id")
            .annotate(n=Count("id"))
            .values_list("n", flat=True),
            reverse=True,
        )
        shown, distinct = sum(per), len(per)
        top = sum(per[: max(1, math.ceil(EXPOSURE_TOP_SHARE * attendees))])
    top_n = max(1, math.ceil(EXPOSURE_TOP_SHARE * attendees))
    top_share = round(int(top) / int(shown), 4) if shown else None
    return {
        "attendees": attendees,
        "shown": int(shown),
        "top_n": top_n,
        "top_shown": int(top),
        "top_share": top_share,
        "even_share": EXPOSURE_TOP_SHARE,
        "distinct_suggested": distinct,
        "cap_share": event.exposure_cap_share,
        "advice": exposure_advice(top_share=top_share, cap_share=event.exposure_cap_share),
    }


# Above this many times the even share, the card says what to do about it (the page's own verdict
# calls 3x "evenly spread" and over 8x "concentrated").
EXPOSURE_ADVICE_RATIO = 3.0
LOWER_THE_CAP = (
    "To spread suggestions, lower the exposure cap in the event's settings (now {cap} of all lists per "
    "person; try {suggested}). A lower cap spreads them further at some cost in relevance: on the SFHH09 "
    "benchmark, 5% took the top 1%'s share from 20% to 3% and new-contact recall down by a fifth."
)
SET_A_CAP = (
    "To spread suggestions, set an exposure cap in the event's settings (now 100%, no limit; 5% is the "
    "default): it limits the share of all lists one person may appear in."
)
AT_THE_CAP = (
    "The cap ({cap}) is already low: the lists are short of other candidates. More activity, or "
    "declared interests and offers, give the matchmaking more people to suggest."
)


def exposure_advice(*, top_share: float | None, cap_share: float) -> str:
    """What an organizer can do when suggestions concentrate on a few people, or "" when they do
    not. The cap is the one setting that acts on it (`Event.exposure_cap_share`)."""
    if top_share is None or top_share <= EXPOSURE_ADVICE_RATIO * EXPOSURE_TOP_SHARE:
        return ""
    if cap_share >= 1.0:
        return SET_A_CAP
    if cap_share <= 0.02:
        return AT_THE_CAP.format(cap=_percent(cap_share))
    return LOWER_THE_CAP.format(cap=_percent(cap_share), suggested=_percent(max(0.02, cap_share / 2)))


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


def dashboard_snapshot(*, event: Event, now: datetime | None = None) -> dict:
    """Everything the dashboard shows for `event`, in a fixed number of queries."""
    now = now or timezone.now()
    engagement = _engagement(event=event, now=now)
    versions = list(ModelVersion.objects.filter(event=event).order_by("-number")[:MODEL_VERSIONS_SHOWN])
    published = next((v for v in versions if v.status == ModelVersion.Status.PUBLISHED), None)
    if published is None and len(versions) == MODEL_VERSIONS_SHOWN:
        # Only when the published version is older than the ones listed.
        published = ModelVersion.objects.filter(event=event, status=ModelVersion.Status.PUBLISHED).first()
    batch = BatchRecommendation.objects.filter(event=event).aggregate(n=Count("id"), at=Max("computed_at"))
    runs = list(TrainingRun.objects.filter(event=event).order_by("-created_at", "-id")[:RUNS_SHOWN])
    exposure = _exposure(event=event)
    return {
        "generated_at": now.isoformat(),
        "event": {
            "id": event.pk,
            "name": event.name,
            "slug": event.slug,
            "organization": event.organization.name,
            "timezone": event.timezone,
            "backend": event.backend,
            "live_starts_at": _iso(event.live_starts_at),
            "live_ends_at": _iso(event.live_ends_at),
            "attendees": exposure["attendees"],  # the exposure query counts them anyway
        },
        "engagement": engagement,
        "readiness": _readiness(event=event, qualifying=engagement["qualifying"], published=published, batch=batch),
        "models": [_version(v, event=event) for v in versions],
        "runs": [_run(r) for r in runs],
        "funnel": _funnel(event=event),
        "exposure": exposure,
        "meetings": _meetings(event=event, attendees=exposure["attendees"]),
    }
