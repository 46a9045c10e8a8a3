"""manage.py batch_recommendations --event S --num-results N --output FILE

Suggestions for every attendee of the event from its published local model, written as JSON lines
in Amazon Personalize's batch-inference output format (so one consumer reads either source):

    {"input": {"itemId": "<attendee external id>"},
     "output": {"recommendedItems": [...], "scores": [...]}, "error": null}     (one line per attendee)

Attendees the model knows nothing about get the rules engine's suggestions. Candidates who do not
consent to be recommended are left out; the rest of the post-filters (blocks, connections,
not-relevant) belong to the serving path, which reads this file's lists through the batch table."""

import json
import time

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from events.models import Attendee
from recommendations.local import NO_PUBLISHED_VERSION, loaded_model, published_version
from recommendations.rules import rules_candidates

from ._common import get_event

BAD_NUM_RESULTS = "--num-results must be between 1 and {max}, got {value}."
MAX_RESULTS = 500


class Command(BaseCommand):
    help = "Write every attendee's suggestions as JSON lines (Personalize batch-inference output format)."

    def add_arguments(self, parser):
        parser.add_argument("--event", required=True, help="Event slug.")
        parser.add_argument("--num-results", type=int, default=25)
        parser.add_argument("--output", required=True, help="File to write ('-' for standard output).")

    def handle(self, *args, event, num_results, output, **options):
        if not 1 <= num_results <= MAX_RESULTS:
            raise CommandError(BAD_NUM_RESULTS.format(max=MAX_RESULTS, value=num_results))
        ev = get_event(event)
        version = published_version(event=ev)
        if version is None:
            raise CommandError(NO_PUBLISHED_VERSION.format(event=ev.slug))
        started = time.perf_counter()
        try:
            out = self.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write {output!r}: {exc.strerror}.") from exc
        try:
            count = write_batch(event=ev, version=version, num_results=num_results, out=out)
        finally:
            if out is not self.stdout:
                out.close()
        if output != "-":
            self.stdout.write(
                f"wrote {count} lines to {output} from model v{version.number} in {time.perf_counter() - started:.2f}s"
            )


def write_batch(*, event, version, num_results: int, out) -> int:
    loaded = loaded_model(version)
    model = loaded.model
    rows = list(
        Attendee.objects.filter(event=event).order_by("pk").values_list("pk", "external_id", "consent_be_recommended")
    )
    external = {pk: ext for pk, ext, _ in rows}
    hidden = {pk for pk, _, ok in rows if not ok}
    hidden_idx = np.array(sorted(i for pk in hidden if (i := loaded.index_of(pk)) is not None), dtype=np.int64)
    from_table = num_results + len(hidden) <= model.config.top_k
    count = 0
    for pk, ext, _ in rows:
        a = loaded.index_of(pk)
        if a is not None and loaded.n_contexts_of(a) > 0:
            with loaded.lock:
                if from_table:
                    idx, scores = model.neighbours(a)
                else:
                    idx, scores = model.neighbours(a, num_results, exclude=hidden_idx)
            pairs = [
                (external.get(int(loaded.attendee_ids[b])), float(s))
                for b, s in zip(idx.tolist(), scores.tolist(), strict=True)
                if int(loaded.attendee_ids[b]) not in hidden
            ]
            pairs = [(e, s) for e, s in pairs if e is not None][:num_results]
        else:
            attendee = Attendee(pk=pk, event=event)
            pairs = [
                (external[c.attendee_id], c.score)
                for c in rules_candidates(event=event, attendee=attendee, limit=num_results + len(hidden))
                if c.attendee_id not in hidden
            ][:num_results]
        line = {
            "input": {"itemId": ext},
            "output": {"recommendedItems": [e for e, _ in pairs], "scores": [round(s, 6) for _, s in pairs]},
            "error": None,
        }
        out.write(json.dumps(line) + "\n")
        count += 1
    return count
