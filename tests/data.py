"""Writing test rows the way the main app does: contract columns only, plain SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa


def utc(text: str) -> dt.datetime:
    """An instant from `2026-03-08T04:00` (UTC) or any ISO string with an offset."""
    instant = dt.datetime.fromisoformat(text)
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def _insert(connection: sa.Connection, table: str, **values: Any) -> uuid.UUID:
    columns = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    statement = sa.text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id")
    return connection.execute(statement, values).scalar_one()  # type: ignore[no-any-return]


def add_user(
    connection: sa.Connection,
    *,
    created_at: dt.datetime,
    timezone: str = "UTC",
    carry_over: str | None = None,
    streak_threshold: int | None = None,
    email: str | None = None,
) -> uuid.UUID:
    values: dict[str, Any] = {
        "email": email or f"{uuid.uuid4().hex[:10]}@example.com",
        "timezone": timezone,
        "created_at": created_at,
    }
    if carry_over is not None:
        values["carry_over"] = carry_over
    if streak_threshold is not None:
        values["streak_threshold"] = streak_threshold
    return _insert(connection, "users", **values)


def add_subscription(
    connection: sa.Connection, user_id: uuid.UUID, endpoint: str, *, p256dh: str, auth: str
) -> uuid.UUID:
    """A push subscription as the main app stores it (directly, past the API's checks)."""
    return _insert(
        connection,
        "push_subscriptions",
        user_id=user_id,
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
    )


def add_plan(connection: sa.Connection, user_id: uuid.UUID, day: dt.date | str) -> uuid.UUID:
    return _insert(connection, "todays_plans", user_id=user_id, plan_date=_date(day))


def add_task(
    connection: sa.Connection,
    user_id: uuid.UUID,
    plan_id: uuid.UUID | None,
    *,
    title: str = "a task",
    completed_at: dt.datetime | None = None,
    completed: bool | None = None,
    **extra: Any,
) -> uuid.UUID:
    done = completed if completed is not None else completed_at is not None
    return _insert(
        connection,
        "tasks",
        user_id=user_id,
        plan_id=plan_id,
        title=title,
        completed=done,
        completed_at=completed_at,
        **extra,
    )


def add_routine(
    connection: sa.Connection,
    user_id: uuid.UUID,
    completions: Sequence[dt.datetime | bool | None],
    *,
    name: str = "morning",
) -> list[uuid.UUID]:
    """A routine with one task per entry: an instant (completed then), True (completed, no
    instant), False or None (not completed)."""
    routine = _insert(connection, "daily_routines", user_id=user_id, name=name)
    ids = []
    for position, completion in enumerate(completions):
        completed = completion is True or isinstance(completion, dt.datetime)
        completed_at = completion if isinstance(completion, dt.datetime) else None
        ids.append(
            _insert(
                connection,
                "routine_tasks",
                routine_id=routine,
                title=f"step {position}",
                position=position,
                completed=completed,
                completed_at=completed_at,
            )
        )
    return ids


def complete(connection: sa.Connection, table: str, row_id: uuid.UUID, at: dt.datetime) -> None:
    connection.execute(
        sa.text(f"UPDATE {table} SET completed = true, completed_at = :at WHERE id = :id"),
        {"at": at, "id": row_id},
    )


def history(
    connection: sa.Connection, user_id: uuid.UUID
) -> list[tuple[str, int, int, Decimal | None, int]]:
    rows = connection.execute(
        sa.text(
            "SELECT day, completed_tasks, total_tasks, score, threshold FROM performance_history"
            " WHERE user_id = :u ORDER BY day"
        ),
        {"u": user_id},
    )
    return [
        (row.day.isoformat(), row.completed_tasks, row.total_tasks, row.score, row.threshold)
        for row in rows
    ]


def streak(connection: sa.Connection, user_id: uuid.UUID) -> tuple[int, int, str | None] | None:
    row = connection.execute(
        sa.text("SELECT current, longest, last_activity_date FROM streaks WHERE user_id = :u"),
        {"u": user_id},
    ).one_or_none()
    if row is None:
        return None
    last = row.last_activity_date.isoformat() if row.last_activity_date else None
    return (row.current, row.longest, last)


def task_place(connection: sa.Connection, task_id: uuid.UUID) -> str | None:
    """The plan date a task sits in, or None for the inbox."""
    day = connection.scalar(
        sa.text(
            "SELECT p.plan_date FROM tasks t LEFT JOIN todays_plans p ON p.id = t.plan_id"
            " WHERE t.id = :id"
        ),
        {"id": task_id},
    )
    return day.isoformat() if day else None


def routine_states(connection: sa.Connection, ids: Sequence[uuid.UUID]) -> list[bool]:
    rows = {
        row.id: row.completed
        for row in connection.execute(
            sa.text("SELECT id, completed FROM routine_tasks WHERE id = ANY(:ids)"),
            {"ids": list(ids)},
        )
    }
    return [rows[i] for i in ids]


def _date(day: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(day) if isinstance(day, str) else day
