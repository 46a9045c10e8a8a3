"""manage.py create_event --slug S --name N [--threshold N] [--min-dwell SECONDS] [--organization SLUG]
    [--preset face-to-face]

Part of the scriptable CLI path (create_event -> import_interactions -> train -> batch_recommendations).
Prints the new event's slug and id on one line."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from events.enums import EnginePreset, InteractionType
from events.models import Event, Organization

EVENT_EXISTS = "An event with slug {slug!r} already exists."
BAD_NUMBER = "{option} must be a number >= 0, got {value!r}."
BAD_PRESET = "--preset must be one of {known}, got {value!r}."
DEFAULT_ORGANIZATION = "default"
# The interaction types whose value is a dwell in seconds: --min-dwell applies to all of them.
DWELL_TYPES = (InteractionType.JOIN_ROOM.value, InteractionType.VIEW_CONTENT.value)


class Command(BaseCommand):
    help = "Create an event (and its organization if missing) with its matchmaking thresholds."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--threshold", help="Qualifying interactions before the model replaces the rules.")
        parser.add_argument("--min-dwell", help="Seconds of dwell a room visit or content view needs to qualify.")
        parser.add_argument(
            "--organization", default=DEFAULT_ORGANIZATION, help="Organization slug (created if missing)."
        )
        parser.add_argument(
            "--preset",
            default=EnginePreset.ROOMS.value,
            help="What the contexts are, for the local model's settings: "
            + ", ".join(f"{p.value!r} ({p.label})" for p in EnginePreset),
        )

    def handle(self, *args, slug, name, threshold, min_dwell, organization, preset, **options):
        if Event.objects.filter(slug=slug).exists():
            raise CommandError(EVENT_EXISTS.format(slug=slug))
        if preset not in EnginePreset.values:
            raise CommandError(BAD_PRESET.format(value=preset, known=", ".join(repr(v) for v in EnginePreset.values)))
        fields = {"engine_preset": preset}
        if threshold is not None:
            fields["qualifying_threshold"] = _number("--threshold", threshold, int)
        if min_dwell is not None:
            seconds = _number("--min-dwell", min_dwell, float)
            fields["dwell_thresholds"] = {t: (int(seconds) if seconds.is_integer() else seconds) for t in DWELL_TYPES}
        with transaction.atomic():
            org, _ = Organization.objects.get_or_create(slug=organization, defaults={"name": organization})
            event = Event(organization=org, slug=slug, name=name, **fields)
            try:
                event.full_clean()
            except ValidationError as exc:
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
            event.save()
        self.stdout.write(f"created event {event.slug} (id {event.pk})")


def _number(option: str, value: str, kind):
    try:
        number = kind(value)
    except ValueError:
        raise CommandError(BAD_NUMBER.format(option=option, value=value)) from None
    if number < 0:
        raise CommandError(BAD_NUMBER.format(option=option, value=value))
    return number
