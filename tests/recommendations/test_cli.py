"""The scriptable CLI path, end to end on the real database:
create_event -> import (CSV) -> train -> batch_recommendations -> JSON lines."""

import io
import json
import re

import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError

from events.enums import EnginePreset
from events.management.commands.create_event import BAD_NUMBER, BAD_PRESET, EVENT_EXISTS
from events.models import Attendee, Event, Interaction
from recommendations.backends.local.fit import BAD_CONFIG, BAD_CONFIG_TEXT, CONFIG_PRESETS
from recommendations.engine import FACE_TO_FACE, EngineConfig
from recommendations.evaluation import protocol as E
from recommendations.management.commands._common import UNKNOWN_EVENT
from recommendations.management.commands._import import import_csv
from recommendations.management.commands.batch_recommendations import BAD_NUM_RESULTS, MAX_RESULTS, NO_VERSION
from recommendations.management.commands.evaluate_contacts import BAD_PRESET as BAD_EVAL_PRESET
from recommendations.management.commands.evaluate_contacts import (
    BAD_SURVEY_LINE,
    GIVEN,
    NO_DATA,
    NO_TARGETS,
    UNKNOWN_PEOPLE,
)
from recommendations.models import ModelVersion

pytestmark = [pytest.mark.django_db, pytest.mark.real_backends]

# Two groups of three people who share small rooms; "p7" only joined the keynote with everyone.
CSV_ROWS = [
    ("r-a1", "p1", 1000, 600),
    ("r-a1", "p2", 1000, 600),
    ("r-a1", "p3", 1100, 300),
    ("r-a2", "p1", 5000, 900),
    ("r-a2", "p2", 5000, 900),
    ("r-b1", "p4", 1000, 600),
    ("r-b1", "p5", 1000, 600),
    ("r-b1", "p6", 1200, 300),
    ("r-b2", "p5", 5000, 900),
    ("r-b2", "p6", 5000, 900),
    *[("keynote", f"p{i}", 9000, 1800) for i in range(1, 8)],
    ("r-a1", "p8", 1000, 30),  # 30 s: below the 60 s threshold, does not qualify
]


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def import_file(slug: str, path) -> int:
    """`import_interactions --create-missing` when installed (ingestion branch), else the stand-in."""
    if "import_interactions" in get_commands():
        run("import_interactions", str(path), event=slug, create_missing=True, no_progress=True)
        return Interaction.objects.filter(event__slug=slug).count()
    return import_csv(event=Event.objects.get(slug=slug), path=str(path))


def write_csv(path) -> None:
    lines = ["USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE"]
    lines += [f"{room},{att},{ts},join_room,{dwell}" for room, att, ts, dwell in CSV_ROWS]
    path.write_text("\n".join(lines) + "\n")


def test_cli_path_create_import_train_batch(tmp_path, settings):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    csv_path, out_path = tmp_path / "interactions.csv", tmp_path / "batch.jsonl"
    write_csv(csv_path)

    created = run("create_event", slug="conf", name="Conf", threshold="5", min_dwell="60", organization="acme")
    event = Event.objects.get(slug="conf")
    imported = import_file("conf", csv_path)
    summary = run("train", event="conf")
    batch = run("batch_recommendations", event="conf", num_results=3, output=str(out_path))

    assert created == f"created event conf (id {event.pk})\n"
    assert (event.qualifying_threshold, event.dwell_thresholds) == (5, {"join_room": 60, "view_content": 60})
    assert imported == 18
    fields = dict(line.split(": ", 1) for line in summary.splitlines())
    assert {k: fields[k] for k in ("version", "status", "attendees", "contexts", "interactions")} == {
        "version": "1",
        "status": "published",
        "attendees": "7",
        "contexts": "5",
        "interactions": "17",
    }
    assert batch.startswith("wrote 8 lines to ")
    lines = [json.loads(line) for line in out_path.read_text().splitlines()]
    by_id = {line["input"]["itemId"]: line for line in lines}
    assert sorted(by_id) == ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"]
    assert all(line["error"] is None for line in lines)
    assert set(lines[0]) == {"input", "output", "error"}
    assert by_id["p1"]["output"]["recommendedItems"][:2] == ["p2", "p3"]
    assert by_id["p5"]["output"]["recommendedItems"][:2] == ["p6", "p4"]
    assert all(len(line["output"]["scores"]) == len(line["output"]["recommendedItems"]) for line in lines)
    assert {line["output"]["sources"][0] for line in lines if line["input"]["itemId"] != "p8"} == {"local"}
    # p8 has no qualifying activity and declared nothing: the most active attendees fill the list
    # (p1, p2 and p5 were in rooms 55 min each; ties by registration order).
    assert by_id["p8"]["output"]["recommendedItems"] == ["p1", "p2", "p5"]
    assert by_id["p8"]["output"]["sources"] == ["popularity"] * 3
    assert "entries by source: local 21, popularity 3 (model v1: configured)" in batch


def test_batch_without_a_published_version_still_writes_every_list_and_says_from_what(tmp_path, settings):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    write_csv(tmp_path / "i.csv")
    run("create_event", slug="conf", name="Conf", threshold="5", min_dwell="60")
    import_file("conf", tmp_path / "i.csv")
    out_path = tmp_path / "batch.jsonl"

    batch = run("batch_recommendations", event="conf", num_results=4, output=str(out_path))

    lines = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert len(lines) == 8
    assert all(len(line["output"]["recommendedItems"]) == 4 for line in lines)
    assert {src for line in lines for src in line["output"]["sources"]} == {"popularity"}
    by_id = {line["input"]["itemId"]: line["output"]["recommendedItems"] for line in lines}
    assert by_id["p1"] == ["p2", "p5", "p6", "p4"]  # the most active, without p1 themselves
    assert batch.endswith(NO_VERSION.format(event="conf") + "\n")
    assert "entries by source: popularity 32" in batch


def test_train_takes_a_preset_by_name(tmp_path, settings):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    write_csv(tmp_path / "i.csv")
    run("create_event", slug="conf", name="Conf")
    import_file("conf", tmp_path / "i.csv")

    run("train", event="conf", config="face-to-face")

    config = ModelVersion.objects.get().config
    assert {k: config[k] for k in FACE_TO_FACE.to_dict()} == FACE_TO_FACE.to_dict()


def test_an_event_created_with_a_preset_trains_with_it_and_a_config_adjusts_it(tmp_path, settings):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    write_csv(tmp_path / "i.csv")
    run("create_event", slug="conf", name="Conf", preset="face-to-face")
    import_file("conf", tmp_path / "i.csv")

    run("train", event="conf")
    run("train", event="conf", config='{"w_social": 0.5}')

    first, second = (v.config for v in ModelVersion.objects.order_by("number"))
    assert Event.objects.get(slug="conf").engine_preset == "face-to-face"
    assert {k: first[k] for k in FACE_TO_FACE.to_dict()} == FACE_TO_FACE.to_dict()
    assert {k: second[k] for k in FACE_TO_FACE.to_dict()} == FACE_TO_FACE.to_dict() | {"w_social": 0.5}


def test_every_engine_preset_an_event_can_choose_has_its_settings():
    assert set(CONFIG_PRESETS) == set(EnginePreset.values) - {EnginePreset.ROOMS.value}


def test_train_twice_on_the_same_inputs_keeps_one_version(tmp_path, settings):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    write_csv(tmp_path / "i.csv")
    run("create_event", slug="conf", name="Conf")
    import_file("conf", tmp_path / "i.csv")

    first, second = run("train", event="conf"), run("train", event="conf")

    assert first.splitlines()[0] == second.splitlines()[0] == "version: 1"
    assert ModelVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("command", "kwargs", "message"),
    [
        (
            "create_event",
            {"slug": "x", "name": "X", "threshold": "many"},
            BAD_NUMBER.format(option="--threshold", value="many"),
        ),
        (
            "create_event",
            {"slug": "x", "name": "X", "min_dwell": "-1"},
            BAD_NUMBER.format(option="--min-dwell", value="-1"),
        ),
        (
            "create_event",
            {"slug": "x", "name": "X", "preset": "badges"},
            BAD_PRESET.format(known="'', 'face-to-face'", value="badges"),
        ),
        ("train", {"event": "nope"}, UNKNOWN_EVENT.format(slug="nope")),
        (
            "train",
            {"event": "conf", "config": '{"w_nope": 1}'},
            "--config: " + BAD_CONFIG.format(names="w_nope", known=", ".join(sorted(EngineConfig().to_dict()))),
        ),
        (
            "train",
            {"event": "conf", "config": "face-to-fcae"},
            "--config: " + BAD_CONFIG_TEXT.format(presets="face-to-face", value="face-to-fcae"),
        ),
        (
            "batch_recommendations",
            {"event": "conf", "num_results": 0, "output": "-"},
            BAD_NUM_RESULTS.format(max=MAX_RESULTS, value=0),
        ),
    ],
)
def test_commands_refuse_bad_arguments_in_one_line(command, kwargs, message):
    run("create_event", slug="conf", name="Conf")
    with pytest.raises(CommandError) as exc:
        run(command, **kwargs)
    assert str(exc.value) == message


def test_create_event_refuses_an_existing_slug():
    run("create_event", slug="conf", name="Conf")
    with pytest.raises(CommandError, match=EVENT_EXISTS.format(slug="conf")):
        run("create_event", slug="conf", name="Again")


def test_simulate_event_size_s_writes_the_generated_event():
    out = run("simulate_event", size="S", slug="sim")

    event = Event.objects.get(slug="sim")
    assert out.startswith(f"created sim (id {event.pk}): 2000 attendees, 200 rooms, 20000 interactions;")
    assert (event.attendees.count(), event.rooms.count(), event.interactions.count()) == (2000, 200, 20000)
    assert Attendee.interests.through.objects.filter(attendee__event=event).count() == 2000
    assert event.interactions.filter(processed_at__isnull=True).count() == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "100 1 2\n120 1 x\n",
            "{path}: expected rows of three integers 't i j' (seconds, person, person): could not convert "
            "string 'x' to int64 at row 1, column 3.",
        ),
        ("100 1 2\n120 1 2\n", NO_TARGETS.format(path="{path}", history=2, future=0)),
    ],
)
def test_evaluate_sfhh09_refuses_a_file_it_cannot_use_in_one_line_and_keeps_the_event(tmp_path, text, message):
    run("create_event", slug="sfhh09-test", name="Kept")
    path = tmp_path / "tij.dat"
    path.write_text(text)

    with pytest.raises(CommandError) as exc:
        run("evaluate_sfhh09", slug="sfhh09-test", replace=True, data=str(path))

    assert str(exc.value) == message.format(path=path)
    assert Event.objects.get(slug="sfhh09-test").name == "Kept"


def test_evaluate_sfhh09_takes_an_event_where_someone_met_more_people_than_a_batch_list_holds(tmp_path):
    # Person 1 meets 600 people on day 0 (one 20 s contact each), and 2 and 3 meet on day 1 for 60 s.
    day0 = [f"{36_000 + 20 * j} 1 {j}" for j in range(2, 602)] + ["36000 2 3"]
    day1 = [f"{86_400 + 36_000 + 20 * k} 2 3" for k in range(3)]
    path = tmp_path / "big.dat"
    path.write_text("\n".join(day0 + day1) + "\n")

    out = run("evaluate_sfhh09", slug="big", data=str(path))

    assert "2 evaluated (all)" in out
    assert next(x for x in out.splitlines() if x.startswith("repeat + popularity")).split()[3] == "1.000"


def test_evaluate_sfhh09_prints_the_figures_next_to_the_baselines():
    out = run("evaluate_sfhh09", slug="sfhh09-test")

    lines = out.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("method"))) :]
    assert [x.split("  ")[0] for x in table[1:4]] == ["local model (Django path)", "popularity", "repeat + popularity"]
    assert "348 evaluated (all), 328 (new-only)" in out
    # The baselines computed in the same run match the README's reference figures.
    assert table[2].split()[1:] == ["0.077", "0.056", "0.388", "|", "0.073", "0.040", "0.299"]
    assert table[3].split()[3:] == ["0.253", "0.165", "0.759", "|", "0.073", "0.040", "0.299"]
    # One line per goal, with the interval and its reading.
    goals = [x.split()[0:2] for x in lines if x.startswith("  ") and ("vs " in x)]
    # and again against the baselines naming only the people the product is given: one of the
    # 403 is first seen on day 1, and no list of the product can name them
    assert goals == [["all", "R@10"], ["all", "P@10"], ["new", "R@10"], ["new", "P@10"]] * 2
    assert UNKNOWN_PEOPLE.format(n=1) in lines
    assert all(x.rstrip().endswith(("better", "worse", "not distinguishable")) for x in lines if " vs " in x)
    # Trained with the contact-session preset, the model finds new people better than popularity
    # beyond the noise (with the product's room defaults that interval straddles 0).
    assert "engine settings: preset 'face-to-face'" in out
    assert next(x for x in lines if x.lstrip().startswith("new R@10 vs popularity")).endswith("better")


def _conference(path, *, t0: int) -> None:
    """Two days of contacts among six people, from `t0` (Unix time or an offset alike): on day 0,
    1-2, 3-4 and 5-6 talk; 1 also meets 3. On day 1, 1 meets 2 again and meets 5 for the first time."""
    rows = []
    for k in range(6):
        rows += [(t0 + 36_000 + 20 * k, a, b) for a, b in ((1, 2), (3, 4), (5, 6))]
    rows += [(t0 + 40_000, 1, 3)]
    day1 = t0 + 86_400 + 36_000
    rows += [(day1 + 20 * k, 1, 2) for k in range(4)] + [(day1 + 200 + 20 * k, 1, 5) for k in range(4)]
    path.write_text("".join(f"{t} {a} {b}\n" for t, a, b in sorted(rows)))


@pytest.mark.parametrize("t0", [0, 1_480_000_000], ids=["offset", "unix-time"])
def test_evaluate_contacts_takes_any_t_i_j_file_and_the_cold_start_from_a_survey(tmp_path, t0):
    data, survey = tmp_path / "tij.dat", tmp_path / "meta.dat"
    _conference(data, t0=t0)
    survey.write_text(
        "".join(
            f"{pid}\t0\tF\tC1\tL1\t{seniority}\t{background}\t3\tNo\n"
            for pid, seniority, background in ((1, 2, 1), (2, 2, 2), (3, 4, 1), (4, "NA", "NA"), (5, 2, 1), (6, 5, 3))
        )
    )

    out = run("evaluate_contacts", slug="conf", data=str(data), metadata=str(survey))

    lines = out.splitlines()
    assert re.search(r"^contacts: \d+ day-0 session rows imported via import_interactions --create-missing", out, re.M)
    assert "3 evaluated (all), 2 (new-only)" in out  # 1 (2 again, 5 new), 2 (1 again), 5 (1, new)
    assert "lists served by the product from: local" in out
    tables = [i for i, x in enumerate(lines) if x.startswith("method")]
    first_rows = [lines[i + 1].split("  ")[0] for i in tables]
    assert first_rows == ["local model (Django path)", "rules engine alone (no contacts)"]
    # Six people: every list holds everyone, so each method finds every partner (the plumbing,
    # not the quality, is what this checks; the quality is benchmarks/contact_quality.py's).
    assert lines[tables[1] + 1].split()[-7:] == ["1.000", "0.133", "1.000", "|", "1.000", "0.100", "1.000"]
    assert sum(" vs " in x for x in lines) == 4 + 3
    assert Event.objects.filter(slug__in=["conf", "conf-cold"]).count() == 2


def test_evaluate_contacts_compares_with_the_baselines_naming_only_the_people_the_product_is_given(tmp_path):
    data = tmp_path / "tij.dat"
    _conference(data, t0=0)
    # Person 7 is first seen on day 1, meeting 1 for 80 s: popularity ranks them (history degree 0,
    # last, but inside 1's people not met yet), the product was never given them.
    with data.open("a") as fh:
        fh.write("".join(f"{86_400 + 50_000 + 20 * k} 1 7\n" for k in range(4)))

    out = run("evaluate_contacts", slug="conf", data=str(data))

    lines = out.splitlines()
    rows = {
        x[:38].rstrip(): x[38:].split() for x in lines[lines.index(next(x for x in lines if x.startswith("method"))) :]
    }
    # 1 meets 5 and 7 for the first time, 5 meets 1: new-only recall 1.0 when 7 may be named,
    # (0.5 + 1.0) / 2 when not
    assert rows["popularity"][4] == "1.000"
    assert rows[f"popularity{GIVEN}"][4] == "0.750"
    assert rows["local model (Django path)"][4] == "0.750"
    assert "p7" not in Attendee.objects.filter(event__slug="conf").values_list("external_id", flat=True)
    assert UNKNOWN_PEOPLE.format(n=1) in lines
    after = lines[lines.index(UNKNOWN_PEOPLE.format(n=1)) + 1 :]
    assert [x.split()[0:2] for x in after[:4]] == [["all", "R@10"], ["all", "P@10"], ["new", "R@10"], ["new", "P@10"]]
    assert next(x for x in after if x.lstrip().startswith("new R@10 vs")).rstrip().endswith("not distinguishable")


def test_evaluate_contacts_refuses_bad_input_in_one_line_before_deleting_anything(tmp_path):
    run("create_event", slug="conf", name="Kept")
    good, survey = tmp_path / "tij.dat", tmp_path / "meta.dat"
    _conference(good, t0=0)
    survey.write_text("1\t0\tF\n")
    cases = [
        ({"data": str(tmp_path / "missing.dat")}, NO_DATA.format(path=tmp_path / "missing.dat")),
        ({"data": str(good), "preset": "badges"}, BAD_EVAL_PRESET.format(known="'', 'face-to-face'", value="badges")),
        (
            {"data": str(good), "metadata": str(survey)},
            BAD_SURVEY_LINE.format(path=survey, line=1, n=9, columns=", ".join(E.SURVEY_COLUMNS), got=3),
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(CommandError) as exc:
            run("evaluate_contacts", slug="conf", replace=True, **kwargs)
        assert str(exc.value) == message
    assert Event.objects.get(slug="conf").name == "Kept"
