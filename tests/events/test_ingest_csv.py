"""Bulk import and export in Amazon Personalize's interactions CSV, with the reverse mapping."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from events import ingestion, interchange
from events.enums import InteractionSource, InteractionType
from events.management.commands.import_interactions import ROWS_REJECTED, STRICT_ABORT
from events.models import Attendee, Content, Interaction, InterestTag, Room
from tests.factories import (
    LIVE_START,
    AttendeeFactory,
    ContentFactory,
    EventFactory,
    InteractionFactory,
    InterestTagFactory,
    RoomFactory,
)

pytestmark = pytest.mark.django_db

TS = int((LIVE_START + timedelta(minutes=10)).timestamp())
HEADER = ",".join(interchange.INTERACTIONS_HEADER)


@pytest.fixture
def event():
    event = EventFactory(slug="summit")
    AttendeeFactory(event=event, external_id="ada")
    RoomFactory(event=event, external_id="keynote")
    ContentFactory(event=event, external_id="talk-1")
    InterestTagFactory(event=event, slug="mlops")
    return event


def write(tmp_path, *lines, name="in.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_import(path, *args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_interactions", path, "--event", "summit", "--no-progress", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return str(exc), out.getvalue(), err.getvalue()
    return None, out.getvalue(), err.getvalue()


def test_import_maps_user_id_to_context_and_item_id_to_attendee(tmp_path, event):
    path = write(
        tmp_path,
        HEADER,
        f"keynote,ada,{TS},join_room,120",
        f"content:talk-1,ada,{TS},view_content,10",
        f"interest:mlops,ada,{TS},,",
    )
    error, out, _ = run_import(path)
    assert error is None
    assert out.strip() == "3 imported, 0 already present, of 3 rows."
    rows = sorted(
        Interaction.objects.values_list(
            "type", "value", "qualifies", "source", "room__external_id", "content__external_id", "interest__slug"
        )
    )
    assert rows == [
        (InteractionType.JOIN_ROOM, 120.0, True, InteractionSource.IMPORT, "keynote", None, None),
        (InteractionType.QUESTIONNAIRE, None, True, InteractionSource.IMPORT, None, None, "mlops"),
        (InteractionType.VIEW_CONTENT, 10.0, False, InteractionSource.IMPORT, None, "talk-1", None),
    ]
    assert set(Interaction.objects.values_list("attendee__external_id", flat=True)) == {"ada"}


def test_import_twice_adds_nothing(tmp_path, event):
    path = write(tmp_path, HEADER, f"keynote,ada,{TS},join_room,120", f"keynote,ada,{TS + 5},join_room,90")
    run_import(path)
    error, out, _ = run_import(path)
    assert error is None
    assert out.strip() == "0 imported, 2 already present, of 2 rows."
    assert Interaction.objects.count() == 2


def test_import_reports_each_bad_row_with_line_number_and_exits_nonzero(tmp_path, event):
    path = write(
        tmp_path,
        HEADER,
        f"keynote,ada,{TS},join_room,120",  # line 2: fine
        f"keynote,nobody,{TS},join_room,120",  # 3
        f"nowhere,ada,{TS},join_room,120",  # 4
        "keynote,ada,yesterday,join_room,120",  # 5
        f"keynote,ada,{TS},join_room,-3",  # 6
        f"keynote,ada,{TS},dance,1",  # 7
        f"keynote,ada,{TS}",  # 8
        f"keynote,ada,{TS - 86400},join_room,120",  # 9: the day before the event
        f"content:talk-1,ada,{TS},join_room,120",  # 10
        f"keynote,ada,{TS},join_room,lots",  # 11
        f",ada,{TS},join_room,1",  # 12
        f"keynote,ada,{TS + 1},join_room,100",  # 13: fine
    )
    error, _out, err = run_import(path)
    assert error == ROWS_REJECTED.format(rows=12, accepted=2, duplicate=0, rejected=10)
    assert err.splitlines() == [
        "line 3: " + ingestion.UNKNOWN_ATTENDEE.format(id="nobody", event="summit"),
        "line 4: " + ingestion.UNKNOWN_CONTEXT.format(kind="room", id="nowhere", event="summit"),
        "line 5: " + interchange.BAD_TIMESTAMP.format(value="yesterday"),
        "line 6: " + interchange.NEGATIVE_EVENT_VALUE.format(value="-3"),
        "line 7: " + ingestion.UNKNOWN_TYPE.format(value="'dance'"),
        "line 8: " + interchange.WRONG_FIELD_COUNT.format(expected=5, got=3),
        "line 9: "
        + ingestion.OUTSIDE_WINDOW.format(
            at=(LIVE_START + timedelta(minutes=10) - timedelta(days=1)).isoformat(),
            start=LIVE_START.isoformat(),
            end=(LIVE_START + timedelta(days=30)).isoformat(),
            skew=int(ingestion.CLOCK_SKEW.total_seconds()),
        ),
        "line 10: " + ingestion.ROOM_TYPE_NEEDS_ROOM.format(type="join_room", kind="content"),
        "line 11: " + interchange.BAD_VALUE.format(value="lots"),
        "line 12: " + interchange.EMPTY_FIELD.format(column="USER_ID"),
    ]
    assert Interaction.objects.count() == 2


def test_import_strict_aborts_on_first_bad_row_and_keeps_nothing(tmp_path, event):
    path = write(
        tmp_path,
        HEADER,
        f"keynote,ada,{TS},join_room,120",
        f"keynote,nobody,{TS},join_room,120",
        f"keynote,ada,{TS + 1},join_room,120",
    )
    error, _, _ = run_import(path, "--strict")
    reason = ingestion.UNKNOWN_ATTENDEE.format(id="nobody", event="summit")
    assert error == STRICT_ABORT.format(error=f"line 3: {reason}")
    assert Interaction.objects.count() == 0


def test_import_unknown_ids_create_nothing_without_create_missing(tmp_path, event):
    path = write(tmp_path, HEADER, f"hall-b,grace,{TS},join_room,120")
    error, _, _ = run_import(path)
    assert error is not None
    assert (Attendee.objects.count(), Room.objects.count()) == (1, 1)


def test_import_create_missing_creates_attendees_and_contexts(tmp_path, event):
    path = write(
        tmp_path,
        HEADER,
        f"hall-b,grace,{TS},join_room,120",
        f"content:talk-9,grace,{TS},view_content,40",
        f"interest:rust,grace,{TS},questionnaire,",
        f"room:a:b,grace,{TS},join_room,61",
    )
    error, out, _ = run_import(path, "--create-missing")
    assert error is None
    assert out.strip() == "4 imported, 0 already present, of 4 rows."
    assert Attendee.objects.get(external_id="grace").display_name == "grace"
    assert sorted(Room.objects.values_list("external_id", flat=True)) == ["a:b", "hall-b", "keynote"]
    assert Content.objects.filter(external_id="talk-9").exists()
    assert InterestTag.objects.filter(slug="rust").exists()


def test_import_bad_header_is_one_line_error(tmp_path, event):
    path = write(tmp_path, "USER,ITEM,WHEN", f"keynote,ada,{TS}")
    error, _, _ = run_import(path)
    assert error == interchange.MISSING_COLUMNS.format(
        columns="USER_ID, ITEM_ID, TIMESTAMP", header=",".join(interchange.INTERACTIONS_HEADER)
    )


def test_import_unknown_event_and_missing_file(tmp_path, event):
    with pytest.raises(CommandError, match="No event with slug 'nope'"):
        call_command("import_interactions", write(tmp_path, HEADER), "--event", "nope")
    error, _, _ = run_import(str(tmp_path / "absent.csv"))
    assert error.startswith(f"Cannot read {tmp_path / 'absent.csv'}")


def test_import_chunks_preserve_line_numbers(tmp_path, event):
    lines = [HEADER] + [f"keynote,ada,{TS + n},join_room,70" for n in range(12)]
    lines[8] = f"keynote,nobody,{TS},join_room,70"  # physical line 9
    rows = interchange.read_interactions_csv(io.StringIO("\n".join(lines) + "\n"))
    rejected = []
    stats = ingestion.interactions_import(
        event=event, rows=rows, chunk_size=5, on_rejected=lambda line, reason: rejected.append(line)
    )
    assert (stats.accepted, stats.rejected, rejected) == (11, 1, [9])


def test_export_then_import_round_trip(tmp_path, event):
    ada = Attendee.objects.get(external_id="ada")
    odd_room = RoomFactory(event=event, external_id="a:b")
    InteractionFactory(attendee=ada, room=Room.objects.get(external_id="keynote"), value=120.0)
    InteractionFactory(attendee=ada, room=odd_room, value=30.5, qualifies=False, occurred_at=LIVE_START)
    InteractionFactory(
        attendee=ada, room=None, content=Content.objects.get(), type="view_content", value=45.0, client_event_id="v"
    )
    InteractionFactory(
        attendee=ada,
        room=None,
        interest=InterestTag.objects.get(),
        type="questionnaire",
        value=None,
        client_event_id="q",
    )
    first = tmp_path / "first.csv"
    call_command("export_interactions", "--event", "summit", "--output", str(first), stderr=io.StringIO())
    assert first.read_text().splitlines()[0] == HEADER
    assert f"room:a:b,ada,{int(LIVE_START.timestamp())},join_room,30.5" in first.read_text()

    EventFactory(slug="copy", organization=event.organization)
    call_command(
        "import_interactions", str(first), "--event", "copy", "--create-missing", "--no-progress", stdout=io.StringIO()
    )
    second = tmp_path / "second.csv"
    call_command("export_interactions", "--event", "copy", "--output", str(second), stderr=io.StringIO())
    # Same rows; rows with equal timestamps may come out in another order (ties follow insertion).
    assert second.read_text().splitlines()[0] == HEADER
    assert sorted(second.read_text().splitlines()) == sorted(first.read_text().splitlines())
    assert len(first.read_text().splitlines()) == 5

    qualifying = io.StringIO()
    call_command("export_interactions", "--event", "copy", "--qualifying-only", stdout=qualifying, stderr=io.StringIO())
    assert len(qualifying.getvalue().splitlines()) == 4  # the 30.5 s visit does not qualify
