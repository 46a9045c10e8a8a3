"""manage.py evaluate_sfhh09 [--slug S] [--replace] [--data PATH] [--config JSON]

The protocol of shared/data/sfhh09/README.md run through the product's own scriptable path:
create_event -> import_interactions --create-missing (a CSV of day-0 sessions) -> train ->
batch_recommendations, then the batch file is scored: recall, precision and hit at 10 for "all"
future partners and "new-only" (people not met on day 0, removed from the suggestions), next to
the popularity and repeat-contacts + popularity baselines computed in the same run by the
engine's protocol module (recommendations.engine.sfhh09), and the differences to them with a 95 %
paired bootstrap interval over the evaluated attendees.

CSV: USER_ID = session token "s<n>" (a 60 s connected component of contacts; becomes a room),
ITEM_ID = "p<person id>", TIMESTAMP = first tick - 20 s (a tick covers the 20 s before it),
EVENT_TYPE = join_room, EVENT_VALUE = dwell (20 s x ticks). The event is created with
--min-dwell 0: every contact tick is a real face-to-face contact, there are no accidental clicks.
The event is created with ``--preset face-to-face`` (the engine's FACE_TO_FACE settings) unless
``--config`` is given (``'{}'``: the product's defaults, which are meant for rooms and talks).
"""

import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from events.enums import EnginePreset
from events.interchange import CsvInteraction, write_interactions_csv
from events.models import Event
from recommendations.engine import sfhh09 as S

from ._import import import_csv
from .batch_recommendations import MAX_RESULTS

EVENT_EXISTS = "Event {slug!r} exists; pass --replace to delete and re-create it."
NO_DATA = "SFHH09 data not found at {path}."
BAD_DATA = "{path}: expected rows of three integers 't i j' (seconds, person, person): {error}"
NO_TARGETS = (
    "{path}: nobody to evaluate: {history} contact rows on the first day, {future} on the second "
    "(a day ends at a quiet gap of 4 h); the protocol needs people met on day 0 who meet someone on day 1."
)
K = 10


class Command(BaseCommand):
    help = "Evaluate the local recommender on SFHH09 through create_event/import/train/batch."

    def add_arguments(self, parser):
        parser.add_argument("--slug", default="sfhh09-eval")
        parser.add_argument("--replace", action="store_true", help="Delete the event of that slug first.")
        parser.add_argument(
            "--data",
            default=str(S.DEFAULT_PATH),
            help="A contact file in the same format, rows 't i j' (more columns are ignored; default: SFHH09); a day "
            "ends at a 4 h quiet gap.",
        )
        parser.add_argument(
            "--config",
            default=None,
            help="Engine settings as JSON, passed to `train --config` (default: the FACE_TO_FACE preset for "
            "face-to-face contact sessions; '{}' = the product's defaults for rooms).",
        )
        parser.add_argument("--workdir", default="", help="Keep the CSV and batch file here (default: temporary).")

    def handle(self, *args, slug, replace, data, workdir, config, **options):
        if not Path(data).exists():
            raise CommandError(NO_DATA.format(path=data))
        started = time.perf_counter()
        try:
            history, future = S.split_days(S.load_contacts(data))
        except ValueError as exc:  # numpy names the row and column it could not read
            raise CommandError(BAD_DATA.format(path=data, error=exc)) from None
        task = S.make_task(history, future)
        if not task.targets_all:
            raise CommandError(NO_TARGETS.format(path=data, history=history.t.size, future=future.t.size))
        existing = Event.objects.filter(slug=slug).first()
        if existing is not None:
            if not replace:
                raise CommandError(EVENT_EXISTS.format(slug=slug))
            existing.delete()
        # The sessions are 60 s contact components, not rooms: train with the settings learned for
        # that kind of context (on SFHH09 day 0 only) unless told otherwise.
        settings_used = "FACE_TO_FACE preset (contact sessions)" if config is None else f"--config {config}"
        preset = EnginePreset.FACE_TO_FACE.value if config is None else EnginePreset.ROOMS.value
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(workdir or tmp)
            folder.mkdir(parents=True, exist_ok=True)
            csv_path, batch_path = folder / "sfhh09_day0.csv", folder / "sfhh09_batch.jsonl"
            n_rows = _write_csv(task, csv_path)
            quiet = {"stdout": io.StringIO()}
            call_command("create_event", slug=slug, name="SFHH09 (evaluation)", min_dwell="0", preset=preset, **quiet)
            event = Event.objects.get(slug=slug)
            if "import_interactions" in get_commands():
                call_command(
                    "import_interactions", str(csv_path), event=slug, create_missing=True, no_progress=True, **quiet
                )
                how = "import_interactions --create-missing"
            else:
                import_csv(event=event, path=str(csv_path))
                how = "internal CSV import (import_interactions not installed)"
            t_train = time.perf_counter()
            call_command("train", event=slug, config=config or "", stdout=self.stdout)
            train_s = time.perf_counter() - t_train
            # Enough results that the new-only list still has K after removing everyone met on day 0,
            # within what the batch command serves (someone who met more people than that on the
            # first day of a large event may get fewer than K new ones).
            num = min(K + max(len(m) for m in task.met), MAX_RESULTS)
            call_command("batch_recommendations", event=slug, num_results=num, output=str(batch_path), **quiet)
            lists = _read_batch(batch_path)
        scorer = _batch_scorer(task, lists)
        results = {"local model (Django path)": S.evaluate(task, scorer, K)}
        results["popularity"] = S.evaluate(task, S.baseline_popularity(task), K)
        results["repeat + popularity"] = S.evaluate(task, S.baseline_repeat_popularity(task), K)
        self.stdout.write(
            f"sfhh09: {n_rows} day-0 session rows imported via {how}; train {train_s:.1f}s; "
            f"{len(task.targets_all)} evaluated (all), {len(task.targets_new)} (new-only)"
        )
        self.stdout.write(f"engine settings: {settings_used}")
        head = ("all R@10", "P@10", "hit@10", "new R@10", "P@10", "hit@10")
        self.stdout.write(
            f"{'method':28s} {head[0]:>8s} {head[1]:>6s} {head[2]:>6s} | {head[3]:>8s} {head[4]:>6s} {head[5]:>6s}"
        )
        for name, (a, n) in results.items():
            left = f"{a.recall:8.3f} {a.precision:6.3f} {a.hit:6.3f}"
            right = f"{n.recall:8.3f} {n.precision:6.3f} {n.hit:6.3f}"
            self.stdout.write(f"{name:28s} {left} | {right}")
        # "Beats" needs more than a larger mean: the paired bootstrap says whether the difference
        # stands out of the noise of which attendees happen to be evaluated.
        self.stdout.write("local model minus baseline, mean [95 % paired bootstrap interval over attendees]:")
        for goal, diff in S.versus_baselines(task, scorer, K).items():
            verdict = "better" if diff.lo > 0 else "worse" if diff.hi < 0 else "not distinguishable"
            self.stdout.write(f"  {goal:32s} {diff}  {verdict}")
        self.stdout.write(f"total {time.perf_counter() - started:.1f}s")


def _write_csv(task: S.Task, path: Path) -> int:
    s, ids = task.sessions, task.history.person_ids
    rows = (
        CsvInteraction(f"s{ses}", f"p{ids[a]}", int(start) - S.TICK_S, "join_room", float(dwell))
        for a, ses, start, dwell in zip(
            s.attendee.tolist(), s.session.tolist(), s.start.tolist(), s.dwell.tolist(), strict=True
        )
    )
    with open(path, "w", encoding="utf-8") as fh:
        return write_interactions_csv(rows, fh)


def _read_batch(path: Path) -> dict[str, list[str]]:
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out[row["input"]["itemId"]] = row["output"]["recommendedItems"]
    return out


def _batch_scorer(task: S.Task, lists: dict[str, list[str]]):
    """The batch lists as the protocol's scorer: listed people score by rank, the rest -inf."""
    index = {f"p{pid}": i for i, pid in enumerate(task.history.person_ids.tolist())}

    def scorer(a: int) -> np.ndarray:
        s = np.full(task.n, -np.inf)
        items = lists.get(f"p{task.history.person_ids[a]}", [])
        for rank, ext in enumerate(items):
            s[index[ext]] = float(len(items) - rank)
        return s

    return scorer
