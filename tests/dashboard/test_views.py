"""The dashboard page, its JSON, its buttons and its exports: what an organizer gets, and what an
organizer of another organization, a viewer-only user or a stranger does not."""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from dashboard.exports import ENGAGEMENT_HEADER, SUGGESTIONS_HEADER
from dashboard.selectors import AT_THE_CAP, LOWER_THE_CAP, SET_A_CAP, exposure_advice
from dashboard.services import ARTIFACT_GONE, NO_SUCH_VERSION, NOTHING_TO_TEAR_DOWN, RUN_OUTCOME, dashboard_push
from events.enums import Backend
from recommendations.backends.local.loaded import ARTIFACT_MISSING
from recommendations.backends.personalize.models import RemoteResource
from recommendations.backends.personalize.services import NOT_CONFIGURED
from recommendations.models import BatchRecommendation, ModelVersion, TrainingRun
from tests.factories import LIVE_START, AttendeeFactory, EventFactory, InteractionFactory, RoomFactory, UserFactory

from .factories import organizer

pytestmark = pytest.mark.django_db


@pytest.fixture
def mine():
    return EventFactory(name="My summit", slug="my-summit")


@pytest.fixture
def me(mine):
    return organizer(mine.organization, username="orga")


def urls(event):
    return {
        "page": reverse("admin:events_event_dashboard", args=[event.pk]),
        "json": reverse("admin:events_event_dashboard_snapshot", args=[event.pk]),
        "export": reverse("admin:events_event_dashboard_export", args=[event.pk, "engagement"]),
    }


def test_dashboard_page_shows_the_event_to_its_organizer(client, me, mine):
    client.force_login(me)
    response = client.get(urls(mine)["page"])
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 class="mm-title">My summit</h1>' in html
    assert f'"ws_path": "/ws/admin/events/{mine.pk}/dashboard/"' in html
    assert 'id="mm-initial"' in html and "dashboard/dashboard.js" in html


def test_snapshot_json_is_the_event_s_figures(client, me, mine):
    InteractionFactory(attendee=AttendeeFactory(event=mine), occurred_at=LIVE_START + timedelta(minutes=1))
    client.force_login(me)
    body = client.get(urls(mine)["json"]).json()
    assert (body["event"]["slug"], body["engagement"]["total"], body["engagement"]["qualifying"]) == ("my-summit", 1, 1)
    assert 'data-total="1"' in body["engagement"]["chart_svg"]


@pytest.mark.parametrize("which", ["page", "json", "export"])
def test_another_organizations_organizer_gets_404(client, mine, which):
    client.force_login(organizer(username="stranger"))
    assert client.get(urls(mine)[which]).status_code == 404


def test_another_organizations_organizer_cannot_run_actions(client, mine):
    client.force_login(organizer(username="stranger"))
    response = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "batch"]))
    assert response.status_code == 404
    assert not TrainingRun.objects.filter(event=mine).exists()


@pytest.mark.parametrize("which", ["page", "json", "export"])
def test_anonymous_is_sent_to_the_admin_login(client, mine, which):
    response = client.get(urls(mine)[which])
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_superuser_sees_every_event(client, mine):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(urls(mine)["json"]).status_code == 200


def test_viewer_without_change_permission_cannot_run_actions(client, mine):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    mine.organization.organizers.add(viewer)
    client.force_login(viewer)
    assert client.get(urls(mine)["page"]).status_code == 200
    assert client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "batch"])).status_code == 403


def test_action_refuses_get_and_unknown_names(client, me, mine):
    client.force_login(me)
    assert client.get(reverse("admin:events_event_dashboard_action", args=[mine.pk, "batch"])).status_code == 405
    response = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "explode"]))
    assert response.status_code == 400
    assert response.json()["ok"] is False


def test_action_requires_the_csrf_token(me, mine):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(me)
    response = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "batch"]))
    assert response.status_code == 403


def test_batch_action_runs_the_batch_and_reports_its_outcome(client, me, mine):
    AttendeeFactory(event=mine)
    AttendeeFactory(event=mine)
    client.force_login(me)
    body = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "batch"])).json()
    run = TrainingRun.objects.get(event=mine, kind=TrainingRun.Kind.BATCH)
    assert body == {
        "ok": True,
        # nobody declared or did anything: the lists are filled with the event's other attendee
        "message": f"Batch: run {run.pk} succeeded. 2 batch lists written from sources popularity.",
        "run_id": run.pk,
    }
    assert BatchRecommendation.objects.filter(event=mine).count() == 2


def test_teardown_without_remote_resources_says_there_is_nothing(client, me, mine):
    client.force_login(me)
    body = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "teardown"])).json()
    assert body == {"ok": False, "message": NOTHING_TO_TEAR_DOWN, "run_id": None}


def test_teardown_without_aws_settings_reports_the_missing_configuration(client, me, mine, settings):
    settings.AWS_REGION = settings.PERSONALIZE_ROLE_ARN = settings.PERSONALIZE_BUCKET = ""
    mine.backend = Backend.PERSONALIZE
    mine.save()
    RemoteResource.objects.create(event=mine, kind=RemoteResource.Kind.CAMPAIGN, name="c", status="ACTIVE")
    client.force_login(me)
    body = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "teardown"])).json()
    assert body["ok"] is False
    assert body["message"].startswith(NOT_CONFIGURED.format(problem="")[:30])
    assert not TrainingRun.objects.filter(event=mine).exists()


def test_engagement_export_is_one_csv_row_per_interaction(client, me, mine):
    room = RoomFactory(event=mine, external_id="keynote", name="Keynote")
    ada = AttendeeFactory(event=mine, external_id="ada", display_name="Ada")
    InteractionFactory(attendee=ada, room=room, value=75.0, occurred_at=LIVE_START)
    client.force_login(me)
    response = client.get(urls(mine)["export"])
    assert response["Content-Disposition"] == 'attachment; filename="my-summit-engagement.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ENGAGEMENT_HEADER,
        [LIVE_START.isoformat(), "ada", "Ada", "room", "keynote", "Keynote", "join_room", "75.0", "True", "live"],
    ]


def test_suggestions_export_is_one_row_per_suggestion_of_the_batch_table(client, me, mine):
    ada = AttendeeFactory(event=mine, external_id="ada", display_name="Ada")
    bob = AttendeeFactory(event=mine, external_id="bob", display_name="Bob")
    at = timezone.now()
    BatchRecommendation.objects.create(
        event=mine,
        attendee=ada,
        source="rules",
        computed_at=at,
        items=[{"attendee_id": bob.pk, "score": 0.5, "reasons": [{"text": "Shared interest: MLOps"}]}],
    )
    client.force_login(me)
    url = reverse("admin:events_event_dashboard_export", args=[mine.pk, "suggestions"])
    rows = list(csv.reader(io.StringIO(b"".join(client.get(url).streaming_content).decode())))
    assert rows == [
        SUGGESTIONS_HEADER,
        ["ada", "Ada", "1", "bob", "Bob", "0.5", "rules", "", "Shared interest: MLOps", at.isoformat()],
    ]


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x.example","hi")', "+1", "-2+3", "@SUM(A1)", "\tX", "\rX"])
def test_exports_neutralise_names_a_spreadsheet_would_run_as_formulas(client, me, mine, name):
    room = RoomFactory(event=mine, external_id="=cmd", name="@room")
    eve = AttendeeFactory(event=mine, external_id="eve", display_name=name)
    InteractionFactory(attendee=eve, room=room, value=75.0, occurred_at=LIVE_START)
    client.force_login(me)
    rows = list(csv.reader(io.StringIO(b"".join(client.get(urls(mine)["export"]).streaming_content).decode())))
    assert rows[1][2:6] == ["'" + name, "room", "'=cmd", "'@room"]
    assert rows[1][7] == "75.0"  # numbers are not text: untouched


def test_unknown_export_is_404(client, me, mine):
    client.force_login(me)
    assert client.get(reverse("admin:events_event_dashboard_export", args=[mine.pk, "secrets"])).status_code == 404


def test_change_page_and_list_link_to_the_dashboard(client, me, mine):
    client.force_login(me)
    page = urls(mine)["page"]
    assert f'href="{page}"' in client.get(reverse("admin:events_event_change", args=[mine.pk])).content.decode()
    assert f'href="{page}"' in client.get(reverse("admin:events_event_changelist")).content.decode()


def test_event_list_filter_offers_only_the_organizer_s_organizations(client, me, mine):
    EventFactory(organization__name="Their org")
    client.force_login(me)
    html = client.get(reverse("admin:events_event_changelist")).content.decode()
    assert mine.organization.name in html
    assert "Their org" not in html


def test_snapshot_is_shared_until_the_next_push(client, me, mine):
    client.force_login(me)
    first = client.get(urls(mine)["json"]).json()
    InteractionFactory(attendee=AttendeeFactory(event=mine), occurred_at=LIVE_START)
    again = client.get(urls(mine)["json"]).json()
    assert (again["generated_at"], again["engagement"]["total"], again["seq"]) == (first["generated_at"], 0, 0)
    dashboard_push(event_id=mine.pk, reason="interactions")
    after = client.get(urls(mine)["json"]).json()
    assert (after["engagement"]["total"], after["seq"]) == (1, 1)


def test_retrain_action_trains_the_local_model_and_reports_the_new_version(client, me, mine, settings, tmp_path):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    room, other = RoomFactory(event=mine), RoomFactory(event=mine)
    people = [AttendeeFactory(event=mine) for _ in range(4)]
    for i, person in enumerate(people):
        InteractionFactory(attendee=person, room=room, occurred_at=LIVE_START + timedelta(minutes=i))
        InteractionFactory(attendee=person, room=other, occurred_at=LIVE_START + timedelta(hours=1, minutes=i))
    client.force_login(me)
    body = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "retrain"])).json()
    run = TrainingRun.objects.get(event=mine, kind=TrainingRun.Kind.TRAIN)
    assert (run.status, run.model_version.number) == (TrainingRun.Status.SUCCEEDED, 1)
    assert body == {"ok": True, "message": f"Retrain: run {run.pk} succeeded. {run.message}", "run_id": run.pk}


def test_retrain_action_reports_a_training_that_fails(client, me, mine, settings, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "not-a-folder" / "models"  # the artifact cannot be written
    room = RoomFactory(event=mine)
    for person in (AttendeeFactory(event=mine), AttendeeFactory(event=mine)):
        InteractionFactory(attendee=person, room=room)
    client.force_login(me)
    body = client.post(reverse("admin:events_event_dashboard_action", args=[mine.pk, "retrain"])).json()
    run = TrainingRun.objects.get(event=mine, kind=TrainingRun.Kind.TRAIN)
    assert run.status == TrainingRun.Status.FAILED
    message = RUN_OUTCOME.format(what="Retrain", run_id=run.pk, status="failed", message=run.message)
    assert body == {"ok": False, "message": message, "run_id": run.pk}


def _two_versions(event, tmp_path, settings):
    """v1 trained, then more activity and v2 trained: two local versions with real artifacts."""
    from recommendations.jobs.training import run_training

    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    room, other = RoomFactory(event=event), RoomFactory(event=event)
    people = [AttendeeFactory(event=event) for _ in range(4)]
    for i, person in enumerate(people):
        InteractionFactory(attendee=person, room=room, occurred_at=LIVE_START + timedelta(minutes=i))
    run_training(event=event, trigger="test")
    for i, person in enumerate(people):
        InteractionFactory(attendee=person, room=other, occurred_at=LIVE_START + timedelta(hours=1, minutes=i))
    run_training(event=event, trigger="test")
    return {v.number: v for v in ModelVersion.objects.filter(event=event)}


def publish_url(event, number):
    return reverse("admin:events_event_dashboard_publish", args=[event.pk, number])


def test_an_organizer_rolls_back_to_an_earlier_version_and_publishes_the_later_one_again(
    client, me, mine, settings, tmp_path
):
    versions = _two_versions(mine, tmp_path, settings)
    assert sorted(versions) == [1, 2]
    client.force_login(me)
    body = client.post(publish_url(mine, 1)).json()
    serving = ModelVersion.objects.get(event=mine, status=ModelVersion.Status.PUBLISHED)
    assert serving.number == 1
    assert body["ok"] is True and body["message"].startswith("v1 now serves")
    models = {m["number"]: m for m in client.get(urls(mine)["json"]).json()["models"]}
    assert (models[1]["publishable"], models[2]["publishable"]) == (False, True)
    assert client.post(publish_url(mine, 2)).json()["ok"] is True
    assert ModelVersion.objects.get(event=mine, status=ModelVersion.Status.PUBLISHED).number == 2
    assert ModelVersion.objects.filter(event=mine, status=ModelVersion.Status.PUBLISHED).count() == 1


def test_publish_refuses_what_cannot_serve_and_who_may_not_change(client, me, mine, settings, tmp_path):
    versions = _two_versions(mine, tmp_path, settings)
    client.force_login(me)
    response = client.post(publish_url(mine, 9))
    assert (response.status_code, response.json()["message"]) == (409, NO_SUCH_VERSION.format(number=9))
    # An artifact that is gone cannot serve: refused, and the serving version stays.
    serving = ModelVersion.objects.get(event=mine, status=ModelVersion.Status.PUBLISHED).number
    other = 1 if serving == 2 else 2
    for path in Path(versions[other].artifact).iterdir():
        path.unlink()
    response = client.post(publish_url(mine, other))
    missing = ARTIFACT_MISSING.format(version=other, path=versions[other].artifact)
    assert (response.status_code, response.json()["message"]) == (
        409,
        ARTIFACT_GONE.format(number=other, error=missing),
    )
    assert ModelVersion.objects.get(event=mine, status=ModelVersion.Status.PUBLISHED).number == serving
    assert client.get(publish_url(mine, other)).status_code == 405
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    client.force_login(viewer)
    assert client.post(publish_url(mine, other)).status_code in (403, 404)


def test_the_teardown_button_shows_for_personalize_events_only(client, me, mine):
    client.force_login(me)
    assert b'data-action="teardown"' not in client.get(urls(mine)["page"]).content
    mine.backend = Backend.PERSONALIZE
    mine.save()
    assert b'data-action="teardown"' in client.get(urls(mine)["page"]).content


@pytest.mark.parametrize(
    ("top_share", "cap", "expected"),
    [
        (None, 0.05, ""),
        (0.02, 0.05, ""),  # twice the even share: evenly spread enough
        (0.084, 0.05, LOWER_THE_CAP.format(cap="5%", suggested="2.5%")),
        (0.084, 1.0, SET_A_CAP),
        (0.084, 0.02, AT_THE_CAP.format(cap="2%")),
    ],
)
def test_the_exposure_card_says_what_to_do_when_suggestions_concentrate(top_share, cap, expected):
    assert exposure_advice(top_share=top_share, cap_share=cap) == expected
