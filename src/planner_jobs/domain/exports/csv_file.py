"""The CSV export: a ZIP of RFC 4180 UTF-8 files, one per kind of row, streamed into the archive.

Cells that a spreadsheet would read as a formula (starting with = + - @, tab or carriage
return) are prefixed with a quote (OWASP's advice against CSV injection).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import IO, Any

from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.exports.data import ExportData
from planner_jobs.domain.exports.values import iso_date, iso_instant

_FORMULA_STARTS = frozenset(("=", "+", "-", "@", "\t", "\r"))

USER_COLUMNS = ("id", "email", "timezone", "created_at")
GOAL_COLUMNS = ("id", "title", "description", "target_date", "completed_at", "created_at")
TASK_COLUMNS = (
    "id",
    "title",
    "notes",
    "completed",
    "completed_at",
    "due_at",
    "remind_at",
    "plan_date",
    "goal_id",
    "created_at",
)
ROUTINE_TASK_COLUMNS = (
    "routine_id",
    "routine_name",
    "routine_created_at",
    "id",
    "title",
    "position",
    "completed",
    "completed_at",
)
HISTORY_COLUMNS = ("day", "completed_tasks", "total_tasks", "score")
ACTIVITY_COLUMNS = ("id", "kind", "message", "created_at")


def write_csv_zip(data: ExportData, out: IO[bytes]) -> None:
    """Write `data` to `out` as a ZIP of CSV files (timestamps in the user's zone)."""
    zone = resolve_zone(data.user.timezone)

    def at(value: dt.datetime | None) -> str | None:
        return iso_instant(value, zone)

    user = data.user
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _file(
            archive,
            "user.csv",
            USER_COLUMNS,
            [(user.id, user.email, user.timezone, at(user.created_at))],
        )
        _file(
            archive,
            "goals.csv",
            GOAL_COLUMNS,
            (
                (
                    g.id,
                    g.title,
                    g.description,
                    iso_date(g.target_date),
                    at(g.completed_at),
                    at(g.created_at),
                )
                for g in data.goals
            ),
        )
        _file(
            archive,
            "tasks.csv",
            TASK_COLUMNS,
            (
                (
                    t.id,
                    t.title,
                    t.notes,
                    t.completed,
                    at(t.completed_at),
                    at(t.due_at),
                    at(t.remind_at),
                    iso_date(t.plan_date),
                    t.goal_id,
                    at(t.created_at),
                )
                for t in data.tasks
            ),
        )
        _file(
            archive,
            "routine_tasks.csv",
            ROUTINE_TASK_COLUMNS,
            (
                (
                    r.id,
                    r.name,
                    at(r.created_at),
                    s.id,
                    s.title,
                    s.position,
                    s.completed,
                    at(s.completed_at),
                )
                for r in data.routines
                for s in r.tasks
            ),
        )
        _file(
            archive,
            "performance_history.csv",
            HISTORY_COLUMNS,
            ((d.day.isoformat(), d.completed_tasks, d.total_tasks, d.score) for d in data.history),
        )
        _file(
            archive,
            "activity_logs.csv",
            ACTIVITY_COLUMNS,
            ((a.id, a.kind, a.message, at(a.created_at)) for a in data.activity),
        )


BATCH = 1000


def _file(
    archive: zipfile.ZipFile, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    with archive.open(name, "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        rows = iter(rows)
        for batch in iter(lambda: list(islice(rows, BATCH)), []):
            writer.writerows([[_cell(value) for value in row] for row in batch])
        text.flush()
        text.detach()


def _cell(value: Any) -> Any:
    if value.__class__ is str:
        return "'" + value if value[:1] in _FORMULA_STARTS else value
    if value is True or value is False:
        return "true" if value else "false"
    return value  # None is written as an empty cell
