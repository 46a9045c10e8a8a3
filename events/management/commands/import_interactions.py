"""Import interactions from Amazon Personalize's interactions CSV (see events/interchange.py)."""

import io
import os
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from events.ingestion import ImportAborted, interactions_import
from events.interchange import CsvFormatError, read_interactions_csv
from events.models import Event

UNKNOWN_EVENT = "No event with slug {slug!r}."
CANNOT_READ = "Cannot read {path}: {error}"
ROWS_REJECTED = "{rejected} of {rows} rows rejected (see above); {accepted} imported, {duplicate} already present."
STRICT_ABORT = "Aborted, nothing imported: {error}"


class Command(BaseCommand):
    help = (
        "Import interactions from a CSV in Amazon Personalize's format (USER_ID = context, ITEM_ID = attendee, "
        "TIMESTAMP in epoch seconds, optional EVENT_TYPE and EVENT_VALUE). Streams in constant memory; "
        "re-importing the same file adds nothing. Exits non-zero if any row was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, or - for standard input")
        parser.add_argument("--event", required=True, help="slug of the event to import into")
        parser.add_argument(
            "--create-missing",
            action="store_true",
            help="create unknown attendees and contexts (a USER_ID is a room unless prefixed content: or interest:)",
        )
        parser.add_argument("--strict", action="store_true", help="abort on the first bad row, importing nothing")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, file, event, create_missing, strict, no_progress, **options):
        event_obj = Event.objects.filter(slug=event).first()
        if event_obj is None:
            raise CommandError(UNKNOWN_EVENT.format(slug=event))
        if file == "-":
            raw, total = sys.stdin.buffer, None
        else:
            try:
                raw, total = open(file, "rb"), os.path.getsize(file)  # noqa: SIM115 - closed below
            except OSError as exc:
                raise CommandError(CANNOT_READ.format(path=file, error=exc.strerror)) from exc
        progress = tqdm(
            total=total, unit="B", unit_scale=True, desc="import", disable=no_progress, file=sys.stderr, leave=False
        )
        position = [0]

        def on_chunk():
            # The byte offset of the underlying file: the text layer above it reads ahead a little.
            if total is not None:
                now = raw.tell()
                progress.update(now - position[0])
                position[0] = now

        def on_rejected(line: int, reason: str):
            progress.clear()
            self.stderr.write(f"line {line}: {reason}")

        try:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            stats = interactions_import(
                event=event_obj,
                rows=read_interactions_csv(text),
                create_missing=create_missing,
                strict=strict,
                on_rejected=on_rejected,
                on_chunk=on_chunk,
            )
        except CsvFormatError as exc:
            raise CommandError(str(exc)) from exc
        except ImportAborted as exc:
            raise CommandError(STRICT_ABORT.format(error=exc)) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(CANNOT_READ.format(path=file, error=f"not UTF-8 ({exc.reason})")) from exc
        finally:
            progress.close()
            if file != "-":
                raw.close()
        if stats.rejected:
            raise CommandError(ROWS_REJECTED.format(**vars(stats)))
        self.stdout.write(f"{stats.accepted} imported, {stats.duplicate} already present, of {stats.rows} rows.")
