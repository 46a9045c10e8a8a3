"""Holds become time ranges: `ends_at`, the meeting's end (0017 makes it required and, on
PostgreSQL, refuses overlapping holds). Overlapping meeting windows, or a slot length changed after
bookings, lay slots that do not start together but do overlap: equal starts were not enough."""

from django.db import migrations, models
from django.db.models import F


def ends_from_meetings(apps, schema_editor):
    MeetingHold = apps.get_model("events", "MeetingHold")
    Meeting = apps.get_model("events", "Meeting")
    for meeting_id, ends_at in Meeting.objects.filter(holds__isnull=False).values_list("pk", "ends_at").distinct():
        MeetingHold.objects.filter(meeting_id=meeting_id).update(ends_at=ends_at)
    MeetingHold.objects.filter(ends_at__isnull=True).update(ends_at=F("starts_at"))  # cannot happen: booked has both


class Migration(migrations.Migration):
    dependencies = [("events", "0015_attendee_language")]

    operations = [
        migrations.AddField(model_name="meetinghold", name="ends_at", field=models.DateTimeField(null=True)),
        migrations.RunPython(ends_from_meetings, migrations.RunPython.noop),
    ]
