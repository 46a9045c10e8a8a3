"""Holds as time ranges, second step (its own transaction, after 0016 filled `ends_at`): the column
is required, and on PostgreSQL two exclusion constraints refuse overlapping holds of one attendee or
one place."""

from django.db import migrations, models

EXCLUDE = [
    (
        "meeting_hold_attendee_no_overlap",
        "attendee_id WITH =, tstzrange(starts_at, ends_at) WITH &&",
        "attendee_id IS NOT NULL",
    ),
    ("meeting_hold_place_no_overlap", "place_id WITH =, tstzrange(starts_at, ends_at) WITH &&", "place_id IS NOT NULL"),
]


def add_exclusions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")  # a trusted extension: the owner may
    for name, expression, condition in EXCLUDE:
        schema_editor.execute(
            f"ALTER TABLE events_meetinghold ADD CONSTRAINT {name} EXCLUDE USING gist ({expression}) WHERE ({condition})"
        )


def drop_exclusions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in EXCLUDE:
        schema_editor.execute(f"ALTER TABLE events_meetinghold DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("events", "0016_meeting_hold_time_range")]

    operations = [
        migrations.AlterField(model_name="meetinghold", name="ends_at", field=models.DateTimeField()),
        migrations.RunPython(add_exclusions, drop_exclusions),
    ]
