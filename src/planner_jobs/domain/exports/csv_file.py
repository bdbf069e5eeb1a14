"""The CSV export: a ZIP of RFC 4180 UTF-8 files, one per kind of row, streamed into the archive.

Cells that a spreadsheet would read as a formula (starting with = + - @, tab or carriage
return) are prefixed with a quote (OWASP's advice against CSV injection).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from typing import IO, Any

from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.exports.data import ExportData
from planner_jobs.domain.exports.json_file import (
    activity_json,
    day_json,
    goal_json,
    routine_json,
    task_json,
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

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
    user = data.user
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _file(
            archive,
            "user.csv",
            USER_COLUMNS,
            [
                (
                    user.id,
                    user.email,
                    user.timezone,
                    user.created_at.astimezone(zone.tzinfo).isoformat(),
                )
            ],
        )
        _file(archive, "goals.csv", GOAL_COLUMNS, (_values(goal_json(g, zone)) for g in data.goals))
        _file(archive, "tasks.csv", TASK_COLUMNS, (_values(task_json(t, zone)) for t in data.tasks))
        _file(
            archive,
            "routine_tasks.csv",
            ROUTINE_TASK_COLUMNS,
            (
                (routine["id"], routine["name"], routine["createdAt"], *_values(step))
                for routine in (routine_json(r, zone) for r in data.routines)
                for step in routine["tasks"]
            ),
        )
        _file(
            archive,
            "performance_history.csv",
            HISTORY_COLUMNS,
            (_values(day_json(d)) for d in data.history),
        )
        _file(
            archive,
            "activity_logs.csv",
            ACTIVITY_COLUMNS,
            (_values(activity_json(a, zone)) for a in data.activity),
        )


def _values(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.values())


def _file(
    archive: zipfile.ZipFile, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    with archive.open(name, "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(tuple(_cell(value) for value in row) for row in rows)
        text.flush()
        text.detach()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
