"""The JSON export: one UTF-8 document, written section by section."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

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
    """Write `data` to `out` as one JSON document."""
    user = data.user
    head = {
        "schemaVersion": SCHEMA_VERSION,
        "exportedAt": data.exported_at,
        "user": {
            "id": user.id,
            "email": user.email,
            "timezone": user.timezone,
            "createdAt": user.created_at,
        },
        "streak": None
        if data.streak is None
        else {
            "current": data.streak.current,
            "longest": data.streak.longest,
            "lastActivityDate": data.streak.last_activity_date,
            "freezes": data.streak.freezes,
        },
    }
    out.write(_encode(head)[:-1].encode())  # the object stays open for the sections
    _section(out, "goals", (goal_json(goal) for goal in data.goals))
    _section(out, "tasks", (task_json(task) for task in data.tasks))
    _section(out, "dailyRoutines", (routine_json(routine) for routine in data.routines))
    _section(out, "performanceHistory", (day_json(day) for day in data.history))
    _section(out, "activityLogs", (activity_json(entry) for entry in data.activity))
    out.write(b"}")


BATCH = 1000  # items encoded per call: one C-level encode of a list beats one per item


def _section(out: IO[bytes], name: str, items: Iterator[dict[str, Any]]) -> None:
    out.write(b',"' + name.encode() + b'":[')
    separator = b""
    for batch in iter(lambda: list(islice(items, BATCH)), []):
        out.write(separator + _encode(batch)[1:-1].encode())
        separator = b","
    out.write(b"]")


def goal_json(goal: GoalRow) -> dict[str, Any]:
    return {
        "id": goal.id,
        "title": goal.title,
        "description": goal.description,
        "targetDate": goal.target_date,
        "completedAt": goal.completed_at,
        "createdAt": goal.created_at,
    }


def task_json(task: TaskRow) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "notes": task.notes,
        "completed": task.completed,
        "completedAt": task.completed_at,
        "dueAt": task.due_at,
        "remindAt": task.remind_at,
        "planDate": task.plan_date,
        "goalId": task.goal_id,
        "createdAt": task.created_at,
    }


def routine_json(routine: RoutineRow) -> dict[str, Any]:
    return {
        "id": routine.id,
        "name": routine.name,
        "createdAt": routine.created_at,
        "tasks": [
            {
                "id": step.id,
                "title": step.title,
                "position": step.position,
                "completed": step.completed,
                "completedAt": step.completed_at,
            }
            for step in routine.tasks
        ],
    }


def day_json(day: DayRow) -> dict[str, Any]:
    return {
        "day": day.day,
        "completedTasks": day.completed_tasks,
        "totalTasks": day.total_tasks,
        "score": None if day.score is None else float(day.score),
        "streakEffect": day.streak_effect,
    }


def activity_json(entry: ActivityRow) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "message": entry.message,
        "createdAt": entry.created_at,
    }
