"""manage.py train --event S [--config JSON|PRESET] [--fixed]: train the local model synchronously and print a summary.

The summary is one `key: value` per line, stable for scripts:
version, status, attendees, contexts, interactions, seconds, then one line per offline metric."""

from django.core.management.base import BaseCommand, CommandError

from events.models import Interaction
from recommendations.backends.local.fit import CONFIG_PRESETS, default_config, parse_config, train_event_now
from recommendations.management.commands._common import get_event

NOTHING_TO_TRAIN = "Event {slug!r} has no qualifying interactions to train on."


class Command(BaseCommand):
    help = "Train the event's local model now (synchronously) and publish it if it is not worse."

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="Event slug.")
        parser.add_argument(
            "--config",
            default="",
            help="Engine settings as JSON, over the event's preset, e.g. '{\"w_repeat\": 0.2}', or a preset name: "
            + ", ".join(CONFIG_PRESETS)
            + " (default: the event's own preset, Event.engine_preset).",
        )

        parser.add_argument(
            "--fixed",
            action="store_true",
            help="Train with these settings as they are: no per-event choice of how to rank "
            "(by default every training learns it on the event's own earlier interactions).",
        )

    def handle(self, *args, event, config, fixed=False, **options):
        ev = get_event(event)
        try:
            cfg = default_config(event=ev, overrides=parse_config(config))
        except (ValueError, TypeError) as exc:
            raise CommandError(f"--config: {exc}") from exc
        if not Interaction.objects.filter(event=ev, qualifies=True).exists():
            raise CommandError(NOTHING_TO_TRAIN.format(slug=event))
        try:
            version = train_event_now(event=ev, trigger="cli", config=cfg, learn=not fixed)
        except ValueError as exc:
            raise CommandError(f"Training failed for {event!r}: {exc}") from exc
        lines = {
            "version": version.number,
            "status": version.status,
            "attendees": version.n_attendees,
            "contexts": version.n_contexts,
            "interactions": version.n_interactions,
            "seconds": f"{version.training_seconds:.2f}",
        }
        if version.not_published_reason:
            lines["not_published"] = version.not_published_reason
        ranker = version.metrics.get("ranker") or {}
        if ranker:
            lines["ranker"] = f"{ranker.get('name')} ({ranker.get('kind')})"
            lines["ranker.reason"] = ranker.get("reason", "")
            if ranker.get("importance"):
                shares = sorted(ranker["importance"].items(), key=lambda kv: -kv[1])
                lines["ranker.weights"] = ", ".join(f"{label} {share:.2f}" for label, share in shares)
        for key, value in version.metrics.items():
            if key != "ranker":
                lines[f"metric.{key}"] = value
        for key, value in lines.items():
            self.stdout.write(f"{key}: {value}")
