"""Task reminders: the tasks whose reminder is due, and which `remind_at` each was handled for."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from planner_jobs.db import arrays
from planner_jobs.db.models import Task


@dataclass(frozen=True)
class DueReminder:
    task_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    remind_at: dt.datetime
    due_at: dt.datetime | None


def claim_reminders(
    connection: sa.Connection, *, now: dt.datetime, limit: int
) -> list[DueReminder]:
    """Lock up to `limit` tasks whose reminder time has come and that were not reminded for it."""
    rows = connection.execute(
        sa.select(Task.id, Task.user_id, Task.title, Task.remind_at, Task.due_at)
        .where(
            Task.remind_at.is_not(None),
            sa.not_(Task.completed),
            Task.remind_at.is_distinct_from(Task.reminded_for),
            Task.remind_at <= now,
        )
        .order_by(Task.remind_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [
        DueReminder(
            task_id=r.id, user_id=r.user_id, title=r.title, remind_at=r.remind_at, due_at=r.due_at
        )
        for r in rows
    ]


def mark_reminded(connection: sa.Connection, reminders: Sequence[DueReminder]) -> None:
    """Remember which `remind_at` value each task was handled for."""
    if not reminders:
        return
    rows = arrays.rows(
        "handled",
        task_id=(sa.Uuid(), [r.task_id for r in reminders]),
        remind_at=(sa.DateTime(timezone=True), [r.remind_at for r in reminders]),
    )
    connection.execute(
        sa.update(Task).where(Task.id == rows.c.task_id).values(reminded_for=rows.c.remind_at)
    )
