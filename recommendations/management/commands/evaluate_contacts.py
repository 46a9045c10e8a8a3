"""manage.py evaluate_contacts --data FILE [--metadata FILE] [--preset NAME] [--config JSON] [--fixed]
                             [--slug S] [--replace] [--workdir DIR]

Any face-to-face contact file (rows "t i j": seconds, person, person; Unix time or an offset from
the start, a day ends at a quiet gap of 4 h) measured through the product's own scriptable path:
create_event -> import_interactions --create-missing (the first day as 60 s contact sessions) ->
train -> batch_recommendations, then the batch file scored by the protocol of the data sets'
READMEs (`recommendations.evaluation.protocol`): "all" and "new-only" recall, precision and hit at 10,
next to random, popularity, repeat + popularity and Adamic-Adar computed in the same run, and each
goal as a paired difference with a 95 % bootstrap interval over the evaluated attendees, against
the baseline that does best on it here. When people first appear after the first day (the product
is never given them), the same baselines naming only the people it is given are printed and
compared too.

--metadata FILE (the survey of a SocioPatterns conference, WS16 layout) adds the cold start: a
second event with the same attendees, what each would have declared from the survey, and no
contacts at all; the rules engine's lists are scored beside random and metadata homophily.
"""

import io
import tempfile
import time
from pathlib import Path

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from events.enums import EnginePreset
from events.models import Attendee, Event, InterestTag
from events.services import attendee_set_tags
from recommendations.evaluation import protocol as E
from recommendations.evaluation import sfhh09 as S
from recommendations.management.commands._import import import_csv
from recommendations.management.commands.batch_recommendations import MAX_RESULTS

EVENT_EXISTS = "Event {slug!r} exists; pass --replace to delete and re-create it."
NO_DATA = "Contact file not found at {path}."
NO_METADATA = "Metadata file not found at {path}."
BAD_DATA = "{path}: expected rows of three integers 't i j' (seconds, person, person): {error}"
NO_TARGETS = (
    "{path}: nobody to evaluate: {history} contact rows on the first day, {future} on the second "
    "(a day ends at a quiet gap of 4 h); the protocol needs people met on day 0 who meet someone on day 1."
)
BAD_PRESET = "--preset: expected one of {known}, got {value!r}."
BAD_SURVEY_LINE = E.BAD_SURVEY
K = 10
GIVEN = " (first-day people)"
UNKNOWN_PEOPLE = (
    "{n} people appear only after the first day, so no list of the product can name them; the "
    "local model minus the best of the same baselines naming only the people it is given:"
)
VERDICTS = ("better", "worse", "not distinguishable")


class Command(BaseCommand):
    help = "Evaluate the recommender on a face-to-face contact file through create_event/import/train/batch."
    name = "contacts"
    default_data = ""
    default_preset = EnginePreset.ROOMS.value

    def add_arguments(self, parser):
        parser.add_argument("--slug", default=f"{self.name}-eval")
        parser.add_argument("--replace", action="store_true", help="Delete the events of that slug first.")
        parser.add_argument(
            "--data",
            default=self.default_data,
            required=not self.default_data,
            help="Contact file, rows 't i j' (more columns are ignored); a day ends at a 4 h quiet gap.",
        )
        parser.add_argument(
            "--metadata", default="", help="Survey of the attendees (WS16 layout): adds the cold start."
        )
        parser.add_argument(
            "--preset",
            default=None,
            help="create_event --preset (face-to-face, or '' for rooms; default: "
            + (self.default_preset or "''")
            + " unless --config is given).",
        )
        parser.add_argument(
            "--config", default=None, help="Engine settings as JSON (or a preset), for `train --config`."
        )
        parser.add_argument("--fixed", action="store_true", help="`train --fixed`: no per-event choice of ranking.")
        parser.add_argument("--workdir", default="", help="Keep the CSV and batch files here (default: temporary).")

    def handle(self, *args, slug, replace, data, metadata, preset, config, fixed, workdir, **options):
        started = time.perf_counter()
        if not Path(data).exists():
            raise CommandError(NO_DATA.format(path=data))
        if metadata and not Path(metadata).exists():
            raise CommandError(NO_METADATA.format(path=metadata))
        if preset is None:
            preset = self.default_preset if config is None else EnginePreset.ROOMS.value
        if preset not in EnginePreset.values:
            raise CommandError(BAD_PRESET.format(known=", ".join(repr(v) for v in EnginePreset.values), value=preset))
        try:
            history, future = S.split_days(S.load_contacts(data))
        except ValueError as exc:  # numpy names the row and column it could not read
            raise CommandError(BAD_DATA.format(path=data, error=exc)) from None
        survey = {}
        if metadata:
            try:
                survey = E.read_survey(metadata)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        task = S.make_task(history, future)
        if not task.targets_all:
            raise CommandError(NO_TARGETS.format(path=data, history=history.t.size, future=future.t.size))
        slugs = [slug] + ([f"{slug}-cold"] if survey else [])
        existing = Event.objects.filter(slug__in=slugs)
        if existing.exists():
            if not replace:
                raise CommandError(EVENT_EXISTS.format(slug=existing.first().slug))
            existing.delete()
        # Enough results that the new-only list still has K after removing everyone met on day 0,
        # within what the batch command serves.
        num = min(K + max(len(m) for m in task.met), MAX_RESULTS)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(workdir or tmp)
            folder.mkdir(parents=True, exist_ok=True)
            n_rows, how, train_s, lists = self._contacts_run(task, folder, slug, preset, config, fixed, num)
            cold = self._cold_run(task, survey, folder, f"{slug}-cold", num) if survey else None

        ours = E.batch_scorer(task, lists)
        baselines = {
            "popularity": S.baseline_popularity(task),
            "repeat + popularity": S.baseline_repeat_popularity(task),
            "Adamic-Adar": S.baseline_adamic_adar(task),
        }
        results = {"local model (Django path)": S.evaluate(task, ours, K)}
        results.update({name: S.evaluate(task, f, K) for name, f in baselines.items()})
        results["random (5 seeds)"] = E.random_metrics(task, K)
        # People first seen after the first day are never given to the product (the day-0 file
        # does not name them), yet the baselines rank them: at a dense event they fill the end of
        # "people not met yet" and are often met. The same baselines naming only the people the
        # product is given say what its lists could have held.
        unknown = sum(1 for m in task.met if not m)
        given = {f"{name}{GIVEN}": S.only_known(task, f) for name, f in baselines.items()} if unknown else {}
        results.update({name: S.evaluate(task, f, K) for name, f in given.items()})
        served = sorted({src for _, sources in lists.values() for src in sources})
        out = self.stdout
        out.write(
            f"{self.name}: {n_rows} day-0 session rows imported via {how}; train {train_s:.1f}s; "
            f"{len(task.targets_all)} evaluated (all), {len(task.targets_new)} (new-only)"
        )
        out.write(f"engine settings: preset {preset or 'rooms'!r}" + (f", --config {config}" if config else ""))
        out.write(f"lists served by the product from: {', '.join(served) or 'nothing'}")
        self._table(results)
        out.write("local model minus the best baseline of each goal, mean [95 % paired bootstrap interval]:")
        self._goals(E.per_goal(task, ours, baselines, K))
        if given:
            out.write(UNKNOWN_PEOPLE.format(n=unknown))
            self._goals(E.per_goal(task, ours, given, K))
        if cold is not None:
            cold_lists, cold_s = cold
            rules = E.batch_scorer(task, cold_lists)
            cold_baselines = {
                "metadata homophily": E.homophily_scorer(task, survey, popularity=False),
                "metadata homophily + popularity": E.homophily_scorer(task, survey, popularity=True),
            }
            table = {"rules engine alone (no contacts)": S.evaluate(task, rules, K)}
            table.update({name: S.evaluate(task, f, K) for name, f in cold_baselines.items()})
            table["random (5 seeds)"] = results["random (5 seeds)"]
            out.write(f"cold start: the survey as declared data, no contacts ({cold_s:.1f}s)")
            self._table(table)
            out.write("rules engine minus each baseline on new contacts, the cold start's goal:")
            cold_baselines["random (seed 0)"] = S.baseline_random(task, 0)
            for name, baseline in cold_baselines.items():
                diffs = E.versus(task, rules, baseline, name, K)
                self._goals({goal: d for goal, d in diffs.items() if goal.startswith("new R@10")})
        out.write(f"total {time.perf_counter() - started:.1f}s")

    def _contacts_run(self, task, folder: Path, slug: str, preset: str, config, fixed: bool, num: int):
        csv_path, batch_path = folder / f"{self.name}_day0.csv", folder / f"{self.name}_batch.jsonl"
        n_rows = E.write_sessions_csv(task, csv_path)
        quiet = {"stdout": io.StringIO()}
        call_command("create_event", slug=slug, name=f"{self.name} (evaluation)", min_dwell="0", preset=preset, **quiet)
        if "import_interactions" in get_commands():
            call_command(
                "import_interactions", str(csv_path), event=slug, create_missing=True, no_progress=True, **quiet
            )
            how = "import_interactions --create-missing"
        else:
            import_csv(event=Event.objects.get(slug=slug), path=str(csv_path))
            how = "internal CSV import (import_interactions not installed)"
        t_train = time.perf_counter()
        call_command("train", event=slug, config=config or "", fixed=fixed, stdout=self.stdout)
        train_s = time.perf_counter() - t_train
        call_command("batch_recommendations", event=slug, num_results=num, output=str(batch_path), **quiet)
        return n_rows, how, train_s, E.read_batch(batch_path)

    def _cold_run(self, task, survey, folder: Path, slug: str, num: int):
        """The same attendees, what they would have declared, and no activity: the event as it
        starts. Declared data is written with the services the admin and API use."""
        started = time.perf_counter()
        quiet = {"stdout": io.StringIO()}
        call_command("create_event", slug=slug, name=f"{self.name} cold start (evaluation)", **quiet)
        event = Event.objects.get(slug=slug)
        declared = E.survey_declarations(survey)
        with transaction.atomic():
            people = Attendee.objects.bulk_create(
                Attendee(event=event, external_id=f"p{pid}", display_name=f"p{pid}")
                for pid in task.history.person_ids.tolist()
            )
            tags: dict[str, InterestTag] = {}
            for person in people:
                d = declared.get(int(person.external_id[1:]))
                if d is None:
                    continue
                kinds = {}
                for kind, chosen in (("interests", d.interests), ("offers", d.offers), ("seeks", d.seeks)):
                    for tag_slug, label in chosen.items():
                        if tag_slug not in tags:
                            tags[tag_slug] = InterestTag.objects.create(event=event, slug=tag_slug, label=label)
                    kinds[kind] = [tags[s] for s in chosen]
                attendee_set_tags(
                    attendee=person, interests=kinds["interests"], offers=kinds["offers"], seeks=kinds["seeks"]
                )
        batch_path = folder / f"{self.name}_cold_batch.jsonl"
        call_command("batch_recommendations", event=slug, num_results=num, output=str(batch_path), **quiet)
        return E.read_batch(batch_path), time.perf_counter() - started

    def _table(self, results: dict) -> None:
        head = ("all R@10", "P@10", "hit@10", "new R@10", "P@10", "hit@10")
        self.stdout.write(
            f"{'method':38s} {head[0]:>8s} {head[1]:>6s} {head[2]:>6s} | {head[3]:>8s} {head[4]:>6s} {head[5]:>6s}"
        )
        for name, (a, n) in results.items():
            left = f"{a.recall:8.3f} {a.precision:6.3f} {a.hit:6.3f}"
            right = f"{n.recall:8.3f} {n.precision:6.3f} {n.hit:6.3f}"
            self.stdout.write(f"{name:38s} {left} | {right}")

    def _goals(self, diffs: dict) -> None:
        # "Beats" needs more than a larger mean: the paired bootstrap says whether the difference
        # stands out of the noise of which attendees happen to be evaluated.
        for goal, diff in diffs.items():
            verdict = VERDICTS[0] if diff.lo > 0 else VERDICTS[1] if diff.hi < 0 else VERDICTS[2]
            self.stdout.write(f"  {goal:52s} {diff}  {verdict}")
