"""The JSON export: one UTF-8 document, written section by section."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
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

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def write_json(data: ExportData, out: IO[bytes]) -> None:
    """Write `data` to `out` as one JSON document (timestamps in the user's zone, with offset)."""
    zone = resolve_zone(data.user.timezone)
    user = data.user
    head = {
        "schemaVersion": SCHEMA_VERSION,
        "exportedAt": _instant(data.exported_at, zone),
        "user": {
            "id": user.id,
            "email": user.email,
            "timezone": user.timezone,
            "createdAt": _instant(user.created_at, zone),
        },
        "streak": None
        if data.streak is None
        else {
            "current": data.streak.current,
            "longest": data.streak.longest,
            "lastActivityDate": _date(data.streak.last_activity_date),
        },
    }
    out.write(_encode(head)[:-1].encode())  # the object stays open for the sections
    _section(out, "goals", (goal_json(goal, zone) for goal in data.goals))
    _section(out, "tasks", (task_json(task, zone) for task in data.tasks))
    _section(out, "dailyRoutines", (routine_json(routine, zone) for routine in data.routines))
    _section(out, "performanceHistory", (day_json(day) for day in data.history))
    _section(out, "activityLogs", (activity_json(entry, zone) for entry in data.activity))
    out.write(b"}")


def _section(out: IO[bytes], name: str, items: Iterator[dict[str, Any]]) -> None:
    out.write(b',"' + name.encode() + b'":[')
    first = True
    for item in items:
        if not first:
            out.write(b",")
        out.write(_encode(item).encode())
        first = False
    out.write(b"]")


def goal_json(goal: GoalRow, zone: Zone) -> dict[str, Any]:
    return {
        "id": goal.id,
        "title": goal.title,
        "description": goal.description,
        "targetDate": _date(goal.target_date),
        "completedAt": _instant(goal.completed_at, zone),
        "createdAt": _instant(goal.created_at, zone),
    }


def task_json(task: TaskRow, zone: Zone) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "notes": task.notes,
        "completed": task.completed,
        "completedAt": _instant(task.completed_at, zone),
        "dueAt": _instant(task.due_at, zone),
        "remindAt": _instant(task.remind_at, zone),
        "planDate": _date(task.plan_date),
        "goalId": task.goal_id,
        "createdAt": _instant(task.created_at, zone),
    }


def routine_json(routine: RoutineRow, zone: Zone) -> dict[str, Any]:
    return {
        "id": routine.id,
        "name": routine.name,
        "createdAt": _instant(routine.created_at, zone),
        "tasks": [
            {
                "id": step.id,
                "title": step.title,
                "position": step.position,
                "completed": step.completed,
                "completedAt": _instant(step.completed_at, zone),
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
        "createdAt": _instant(entry.created_at, zone),
    }


def _instant(value: dt.datetime | None, zone: Zone) -> str | None:
    return None if value is None else value.astimezone(zone.tzinfo).isoformat()


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()
