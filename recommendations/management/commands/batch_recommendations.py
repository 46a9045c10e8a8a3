"""manage.py batch_recommendations --event S --num-results N --output FILE

Suggestions for every attendee of the event, written as JSON lines in Amazon Personalize's
batch-inference output format (so one consumer reads either source), with the source of each entry
beside it:

    {"input": {"itemId": "<attendee external id>"},
     "output": {"recommendedItems": [...], "scores": [...], "sources": [...]}, "error": null}

Every attendee gets a list, as full as the event allows (`num_results` when that many others
consent): the published local model's suggestions first (source "local", or "popularity" when the
event's own split chose a popularity baseline: `recommendations.backends.popularity.served_as`),
then the rules engine's, then the most active attendees (`recommendations.backends.popularity`).
Without a published version (none trained yet, or the gate kept it) the lists come from the rules
engine and popularity, and the summary says so.
Candidates who do not consent to be recommended are left out; the rest of the post-filters (blocks,
connections, not-relevant) belong to the serving path, which reads this file's lists through the
batch table."""

import json
import time
from collections import Counter

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from events.models import Attendee
from recommendations.backends import get_backend
from recommendations.backends.local.loaded import loaded_model, published_version
from recommendations.backends.popularity import served_as
from recommendations.management.commands._common import get_event
from recommendations.serving.lists import FILL_SOURCES

BAD_NUM_RESULTS = "--num-results must be between 1 and {max}, got {value}."
MAX_RESULTS = 500
WROTE = "wrote {count} lines to {output} in {seconds:.2f}s; entries by source: {sources}"
FROM_VERSION = " (model v{number}: {ranker})"
NO_VERSION = " (no published local model: run `manage.py train --event {event}` to add its suggestions)"


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
        started = time.perf_counter()
        try:
            out = self.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write {output!r}: {exc.strerror}.") from exc
        try:
            count, sources = write_batch(event=ev, version=version, num_results=num_results, out=out)
        finally:
            if out is not self.stdout:
                out.close()
        if output != "-":
            summary = ", ".join(f"{name} {n}" for name, n in sources.most_common()) or "none"
            line = WROTE.format(count=count, output=output, seconds=time.perf_counter() - started, sources=summary)
            if version is not None:
                ranker = (version.metrics.get("ranker") or {}).get("name", "configured")
                line += FROM_VERSION.format(number=version.number, ranker=ranker)
            else:
                line += NO_VERSION.format(event=ev.slug)
            self.stdout.write(line)


def write_batch(*, event, version, num_results: int, out) -> tuple[int, Counter]:
    """One line per attendee; returns the number of lines and the entries written per source."""
    loaded = loaded_model(version) if version is not None else None
    rows = list(
        Attendee.objects.filter(event=event).order_by("pk").values_list("pk", "external_id", "consent_be_recommended")
    )
    external = {pk: ext for pk, ext, _ in rows}
    hidden = {pk for pk, _, ok in rows if not ok}
    hidden_idx = np.array([], dtype=np.int64)
    if loaded is not None:
        hidden_idx = np.array(sorted(i for pk in hidden if (i := loaded.index_of(pk)) is not None), dtype=np.int64)
    sources: Counter = Counter()
    count = 0
    for pk, ext, _ in rows:
        entries: list[tuple[int, float, str]] = []  # (attendee pk, score, source)
        if loaded is not None:
            entries = _model_entries(loaded, pk, hidden, hidden_idx, num_results, served_as(version))
        for name in FILL_SOURCES:  # what the serving path fills a short list with, in its order
            if len(entries) >= num_results:
                break
            taken = {b for b, _, _ in entries} | hidden | {pk}
            viewer = Attendee(pk=pk, event=event)
            more = get_backend(name).candidates(event=event, attendee=viewer, limit=num_results + len(taken))
            entries += [(c.attendee_id, c.score, name) for c in more if c.attendee_id not in taken][
                : num_results - len(entries)
            ]
        entries = [(b, s, src) for b, s, src in entries if b in external][:num_results]
        sources.update(src for _, _, src in entries)
        line = {
            "input": {"itemId": ext},
            "output": {
                "recommendedItems": [external[b] for b, _, _ in entries],
                "scores": [round(s, 6) for _, s, _ in entries],
                "sources": [src for _, _, src in entries],
            },
            "error": None,
        }
        out.write(json.dumps(line) + "\n")
        count += 1
    return count, sources


def _model_entries(loaded, pk: int, hidden: set[int], hidden_idx: np.ndarray, num_results: int, source: str):
    a = loaded.index_of(pk)
    if a is None or loaded.n_contexts_of(a) == 0:
        return []  # the model knows nothing of them: the rules engine and popularity speak
    idx, scores = loaded.ranked(a, num_results, exclude=hidden_idx)
    ids = loaded.attendee_ids
    entries = [(int(ids[b]), float(s), source) for b, s in zip(idx.tolist(), scores.tolist(), strict=True)]
    return [e for e in entries if e[0] not in hidden][:num_results]
