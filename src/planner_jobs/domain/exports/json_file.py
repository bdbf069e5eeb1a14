"""The JSON export: one UTF-8 document, written section by section."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

from planner_jobs.domain.days import Zone, resolve_zone
from planner_jobs.domain.exports.data import (
    SCHEMA_VERSION,
    ActivityRow,
    DayRow,
    ExportData,
    GoalRow,
    RoutineRow,
    TaskRow,
)
from planner_jobs.domain.exports.values import iso_date, iso_instant

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def write_json(data: ExportData, out: IO[bytes]) -> None:
    """Write `data` to `out` as one JSON document (timestamps in the user's zone, with offset)."""
    zone = resolve_zone(data.user.timezone)
    user = data.user
    head = {
        "schemaVersion": SCHEMA_VERSION,
        "exportedAt": iso_instant(data.exported_at, zone),
        "user": {
            "id": user.id,
            "email": user.email,
            "timezone": user.timezone,
            "createdAt": iso_instant(user.created_at, zone),
        },
        "streak": None
        if data.streak is None
        else {
            "current": data.streak.current,
            "longest": data.streak.longest,
            "lastActivityDate": iso_date(data.streak.last_activity_date),
        },
    }
    out.write(_encode(head)[:-1].encode())  # the object stays open for the sections
    _section(out, "goals", (goal_json(goal, zone) for goal in data.goals))
    _section(out, "tasks", (task_json(task, zone) for task in data.tasks))
    _section(out, "dailyRoutines", (routine_json(routine, zone) for routine in data.routines))
    _section(out, "performanceHistory", (day_json(day) for day in data.history))
    _section(out, "activityLogs", (activity_json(entry, zone) for entry in data.activity))
    out.write(b"}")


BATCH = 1000  # items encoded per call: one C-level encode of a list beats one per item


def _section(out: IO[bytes], name: str, items: Iterator[dict[str, Any]]) -> None:
    out.write(b',"' + name.encode() + b'":[')
    separator = b""
    for batch in iter(lambda: list(islice(items, BATCH)), []):
        out.write(separator + _encode(batch)[1:-1].encode())
        separator = b","
    out.write(b"]")


def goal_json(goal: GoalRow, zone: Zone) -> dict[str, Any]:
    return {
        "id": goal.id,
        "title": goal.title,
        "description": goal.description,
        "targetDate": iso_date(goal.target_date),
        "completedAt": iso_instant(goal.completed_at, zone),
        "createdAt": iso_instant(goal.created_at, zone),
    }


def task_json(task: TaskRow, zone: Zone) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "notes": task.notes,
        "completed": task.completed,
        "completedAt": iso_instant(task.completed_at, zone),
        "dueAt": iso_instant(task.due_at, zone),
        "remindAt": iso_instant(task.remind_at, zone),
        "planDate": iso_date(task.plan_date),
        "goalId": task.goal_id,
        "createdAt": iso_instant(task.created_at, zone),
    }


def routine_json(routine: RoutineRow, zone: Zone) -> dict[str, Any]:
    return {
        "id": routine.id,
        "name": routine.name,
        "createdAt": iso_instant(routine.created_at, zone),
        "tasks": [
            {
                "id": step.id,
                "title": step.title,
                "position": step.position,
                "completed": step.completed,
                "completedAt": iso_instant(step.completed_at, zone),
            }
            for step in routine.tasks
        ],
    }


def day_json(day: DayRow) -> dict[str, Any]:
    return {
        "day": day.day.isoformat(),
        "completedTasks": day.completed_tasks,
        "totalTasks": day.total_tasks,
        "score": None if day.score is None else float(day.score),
    }


def activity_json(entry: ActivityRow, zone: Zone) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "message": entry.message,
        "createdAt": iso_instant(entry.created_at, zone),
    }
