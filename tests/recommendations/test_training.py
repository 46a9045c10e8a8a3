"""Training orchestration: idempotent runs, the minimum of new data, the publish gate, failures,
and the batch for the on-demand phase."""

import pytest
from django.utils import timezone

from events.enums import Backend, Phase
from events.services import attendee_set_consents
from recommendations.jobs import batch, runs, training
from recommendations.jobs.tasks import batch_event, train_event
from recommendations.models import BatchRecommendation, ModelVersion, TrainingRun
from recommendations.serving.lists import recommendations_for
from tests.factories import InteractionFactory

from . import backends
from .factories import ServingEventFactory, attendees

pytestmark = pytest.mark.django_db

Status = TrainingRun.Status
VStatus = ModelVersion.Status


@pytest.fixture
def event():
    event = ServingEventFactory()
    for person in attendees(event, 3):
        InteractionFactory(event=event, attendee=person)
    return event


def versions(event):
    return list(ModelVersion.objects.filter(event=event).order_by("number").values_list("number", "status"))


def test_first_run_publishes_when_at_least_rules_baseline(event):
    run = training.run_training(event=event, trigger="manual")
    assert (run.status, run.kind, run.trigger) == (Status.SUCCEEDED, "train", "manual")
    assert run.message == "Published v1: recall_at_10 0.2 (was rules engine: 0.1)"
    assert versions(event) == [(1, VStatus.PUBLISHED)]
    version = run.model_version
    assert version.metrics == {"recall_at_10": 0.2, "baseline_recall_at_10": 0.1, "baseline": "rules engine"}
    assert (version.n_interactions, version.input_fingerprint) == (
        3,
        backends.LocalDouble().training_fingerprint(event=event),
    )
    assert [step["name"] for step in run.steps] == ["fingerprint", "fit", "gate"]


def test_first_run_below_rules_baseline_is_kept_with_reason(event):
    backends.FIT["metrics"] = {"recall_at_10": 0.05}
    run = training.run_training(event=event)
    assert run.model_version.status == VStatus.KEPT
    assert run.model_version.not_published_reason == "recall_at_10 0.0500 < the rules engine's 0.1000"
    assert run.message == "Kept v1, not published: recall_at_10 0.0500 < the rules engine's 0.1000"


def test_same_inputs_are_unchanged_and_make_no_version(event):
    first = training.run_training(event=event)
    second = training.run_training(event=event)
    assert second.status == Status.UNCHANGED
    assert second.model_version_id == first.model_version_id
    assert second.message.startswith("Same inputs as v1 (fingerprint ")
    assert versions(event) == [(1, VStatus.PUBLISHED)]
    assert [event.pk] == backends.FIT_CALLS


def test_worse_version_is_kept_and_serving_one_stays(event):
    training.run_training(event=event)
    InteractionFactory(event=event, attendee=event.attendees.first())
    backends.FIT["metrics"] = {"recall_at_10": 0.15}
    run = training.run_training(event=event)
    assert versions(event) == [(1, VStatus.PUBLISHED), (2, VStatus.KEPT)]
    assert run.model_version.not_published_reason == "recall_at_10 0.1500 < serving v1's 0.2000"


def test_equal_or_better_version_is_published_and_supersedes(event):
    training.run_training(event=event)
    InteractionFactory(event=event, attendee=event.attendees.first())
    backends.FIT["metrics"] = {"recall_at_10": 0.2}
    run = training.run_training(event=event)
    assert run.message == "Published v2: recall_at_10 0.2 (was v1: 0.2)"
    assert versions(event) == [(1, VStatus.SUPERSEDED), (2, VStatus.PUBLISHED)]


def test_fit_without_gate_metric_is_kept_when_a_measured_version_serves(event):
    training.run_training(event=event)
    InteractionFactory(event=event, attendee=attendees(event, 1)[0])  # new inputs, new fingerprint
    backends.FIT["metrics"] = {"ndcg@10": 0.3}
    run = training.run_training(event=event)
    assert run.model_version.not_published_reason == (
        "The fit reported no recall_at_10 (serving v1 has one); kept, not published."
    )
    assert versions(event) == [(1, VStatus.PUBLISHED), (2, VStatus.KEPT)]


def test_fit_without_gate_metric_is_published_when_nothing_serves(event):
    # An event too small for a holdout: nothing to compare, and the CLI contract trains to serve.
    backends.FIT["metrics"] = {}
    run = training.run_training(event=event)
    assert run.message == "Published v1: recall_at_10 None (was nothing to compare: no holdout)"
    assert versions(event) == [(1, VStatus.PUBLISHED)]


def test_scheduled_run_needs_enough_new_interactions(event, settings):
    settings.RECOMMENDATION_RETRAIN_MIN_NEW_INTERACTIONS = 2
    training.run_training(event=event, trigger="schedule")  # the first version needs no minimum
    InteractionFactory(event=event, attendee=event.attendees.first())
    run = training.run_training(event=event, trigger="schedule")
    assert (run.status, run.message) == (
        Status.SKIPPED,
        "1 new qualifying interactions since v1; a scheduled retrain needs 2.",
    )
    # A manual run is the organizer asking: it goes ahead.
    assert training.run_training(event=event, trigger="manual").model_version.number == 2
    InteractionFactory(event=event, attendee=event.attendees.first(), qualifies=False)
    InteractionFactory(event=event, attendee=event.attendees.first())
    assert training.run_training(event=event, trigger="schedule").status == Status.SKIPPED
    InteractionFactory(event=event, attendee=event.attendees.first())
    assert training.run_training(event=event, trigger="schedule").model_version.number == 3


def test_run_refused_while_another_is_running(event):
    running = TrainingRun.objects.create(event=event, status=Status.RUNNING, started_at=timezone.now())
    run = training.run_training(event=event)
    assert (run.status, run.message) == (
        Status.SKIPPED,
        runs.ALREADY_RUNNING.format(run_id=running.pk),
    )
    assert backends.FIT_CALLS == []


def test_failed_fit_is_a_failed_run_row(event):
    backends.FIT["raise"] = "out of memory"
    run = training.run_training(event=event)
    assert (run.status, run.message) == (Status.FAILED, "RuntimeError: out of memory")
    assert versions(event) == []


def test_untrainable_backend_fails_with_reason(event):
    event.backend = Backend.PERSONALIZE
    event.save()
    run = training.run_training(event=event)
    assert (run.status, run.message) == (Status.FAILED, training.NOT_TRAINABLE.format(backend="personalize"))


def test_train_task_creates_a_run(event):
    run_id = train_event.delay(event_id=event.pk, trigger="admin").get()
    run = TrainingRun.objects.get(pk=run_id)
    assert (run.status, run.trigger) == (Status.SUCCEEDED, "admin")
    assert train_event.delay(event_id=10**9).get() is None


def test_batch_fills_table_for_consenting_viewers_and_serves_on_demand(event):
    viewer, a, b = event.attendees.order_by("pk")
    attendee_set_consents(attendee=b, consent_receive_recommendations=False)
    training.run_training(event=event)
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 0.7), (b.pk, 0.6)], a.pk: [(viewer.pk, 0.5)]}
    run = batch_event.delay(event_id=event.pk, trigger="manual").get()
    run = TrainingRun.objects.get(pk=run)
    assert (run.kind, run.status, run.message) == (
        "batch",
        Status.SUCCEEDED,
        "2 batch lists written from sources local.",
    )
    rows = {row.attendee_id: row for row in BatchRecommendation.objects.filter(event=event)}
    assert set(rows) == {viewer.pk, a.pk}
    assert [item["attendee_id"] for item in rows[viewer.pk].items] == [a.pk, b.pk]
    assert rows[viewer.pk].model_version.number == 1
    # On demand, the table serves, whatever the model now says.
    backends.SCORES["local"][viewer.pk] = [(b.pk, 9.0)]
    event.phase = Phase.ON_DEMAND
    event.save()
    result = recommendations_for(attendee=viewer)
    assert (result.source, result.model_version, [i.attendee_id for i in result.items]) == ("batch", 1, [a.pk, b.pk])


def test_batch_rerun_replaces_rows_and_invalidates_cache(event):
    viewer, a, b = event.attendees.order_by("pk")
    event.phase = Phase.ON_DEMAND
    event.save()
    backends.SCORES["local"] = {viewer.pk: [(a.pk, 1.0)]}
    batch.batch_run(event=event)
    assert recommendations_for(attendee=viewer).items[0].attendee_id == a.pk
    backends.SCORES["local"] = {viewer.pk: [(b.pk, 1.0)]}
    batch.batch_run(event=event)
    assert BatchRecommendation.objects.filter(event=event).count() == 3
    result = recommendations_for(attendee=viewer)
    assert (result.cached, result.items[0].attendee_id) == (False, b.pk)
