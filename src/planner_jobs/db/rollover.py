"""The rollover's set-based SQL: each statement handles a whole batch of user-days at once.

The rules (what is due, scores, streaks) are decided in `planner_jobs.domain`; these statements
gather the counts they need and write the outcome. The predicates "done on that day" mirror
`planner_jobs.domain.carry_over` and are tested against it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from planner_jobs.db.models import (
    DailyRoutine,
    PerformanceHistory,
    RoutineTask,
    Streak,
    Task,
    TodaysPlan,
    User,
)
from planner_jobs.domain.carry_over import CarryOver
from planner_jobs.domain.streaks import Streak as StreakValue


@dataclass(frozen=True)
class ClaimedUser:
    id: uuid.UUID
    timezone: str
    created_at: dt.datetime
    streak_threshold: int | None
    carry_over: CarryOver
    next_date: dt.date | None


@dataclass(frozen=True)
class Closing:
    """One user-day being closed."""

    user_id: uuid.UUID
    day: dt.date
    start: dt.datetime
    end: dt.datetime
    carry_over: CarryOver


@dataclass(frozen=True)
class DayRecord:
    user_id: uuid.UUID
    day: dt.date
    completed: int
    total: int
    score: Decimal | None
    threshold: int


@dataclass(frozen=True)
class Progress:
    """Where a user's calendar stands after a batch."""

    user_id: uuid.UUID
    next_date: dt.date
    due_at: dt.datetime
    zone: str


def _rows(name: str, **columns: tuple[TypeEngine[Any], Sequence[Any]]) -> sa.TableValuedAlias:
    """`unnest(:a, :b, ...) AS name(a, b, ...)`: a table with a row per index of the lists."""
    arrays = [
        sa.bindparam(column, list(values), type_=ARRAY(type_))
        for column, (type_, values) in columns.items()
    ]
    return (
        sa.func.unnest(*arrays)
        .table_valued(*(sa.column(column, type_) for column, (type_, _) in columns.items()))
        .render_derived(name=name)
    )


def _closing_rows(closings: Sequence[Closing]) -> sa.TableValuedAlias:
    return _rows(
        "closing",
        user_id=(sa.Uuid(), [c.user_id for c in closings]),
        day=(sa.Date(), [c.day for c in closings]),
        next_day=(sa.Date(), [c.day + dt.timedelta(days=1) for c in closings]),
        day_start=(sa.DateTime(timezone=True), [c.start for c in closings]),
        day_end=(sa.DateTime(timezone=True), [c.end for c in closings]),
        carry_over=(sa.Text(), [c.carry_over.value for c in closings]),
    )


def plan_task_done(day_end: ColumnElement[dt.datetime]) -> ColumnElement[bool]:
    """SQL twin of `domain.carry_over.plan_task_done`."""
    return sa.and_(Task.completed, sa.or_(Task.completed_at.is_(None), Task.completed_at < day_end))


def routine_task_done(
    day_start: ColumnElement[dt.datetime], day_end: ColumnElement[dt.datetime]
) -> ColumnElement[bool]:
    """SQL twin of `domain.carry_over.routine_task_done`."""
    return sa.and_(
        RoutineTask.completed,
        sa.or_(
            RoutineTask.completed_at.is_(None),
            sa.and_(RoutineTask.completed_at >= day_start, RoutineTask.completed_at < day_end),
        ),
    )


def claim_users(connection: sa.Connection, *, now: dt.datetime, limit: int) -> list[ClaimedUser]:
    """Lock up to `limit` users with rollover work (a due day, or not planned yet).

    `SKIP LOCKED` lets concurrent sweeps take disjoint batches; each branch of the condition is
    served by an index, so the cost follows the users found, not the users that exist.
    """
    has_work = sa.or_(
        User.rollover_due_at <= now,
        User.rollover_due_at.is_(None),
        User.rollover_zone.is_distinct_from(User.timezone),
    )
    not_backing_off = sa.or_(User.rollover_retry_at.is_(None), User.rollover_retry_at <= now)
    return _claim(connection, sa.and_(has_work, not_backing_off), limit=limit)


def claim_user(connection: sa.Connection, user_id: uuid.UUID) -> ClaimedUser | None:
    """Lock one user, or None when another sweep holds it."""
    claimed = _claim(connection, User.id == user_id, limit=1)
    return claimed[0] if claimed else None


def _claim(
    connection: sa.Connection, where: ColumnElement[bool], *, limit: int
) -> list[ClaimedUser]:
    query = (
        sa.select(
            User.id,
            User.timezone,
            User.created_at,
            User.streak_threshold,
            User.carry_over,
            User.rollover_next_date,
        )
        .where(where)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        ClaimedUser(
            id=row.id,
            timezone=row.timezone,
            created_at=row.created_at,
            streak_threshold=row.streak_threshold,
            carry_over=CarryOver(row.carry_over),
            next_date=row.rollover_next_date,
        )
        for row in connection.execute(query)
    ]


def count_days(
    connection: sa.Connection, closings: Sequence[Closing]
) -> dict[uuid.UUID, tuple[int, int]]:
    """(completed, total) of each closing user-day: its plan's tasks and the user's routines."""
    closing = _closing_rows(closings)
    plan = (
        sa.select(
            closing.c.user_id,
            sa.func.count().label("total"),
            sa.func.count().filter(plan_task_done(closing.c.day_end)).label("done"),
        )
        .select_from(closing)
        .join(
            TodaysPlan,
            sa.and_(TodaysPlan.user_id == closing.c.user_id, TodaysPlan.plan_date == closing.c.day),
        )
        .join(Task, Task.plan_id == TodaysPlan.id)
        .group_by(closing.c.user_id)
    )
    routine = (
        sa.select(
            closing.c.user_id,
            sa.func.count().label("total"),
            sa.func.count()
            .filter(routine_task_done(closing.c.day_start, closing.c.day_end))
            .label("done"),
        )
        .select_from(closing)
        .join(DailyRoutine, DailyRoutine.user_id == closing.c.user_id)
        .join(RoutineTask, RoutineTask.routine_id == DailyRoutine.id)
        .group_by(closing.c.user_id)
    )
    counts: dict[uuid.UUID, tuple[int, int]] = {}
    for row in connection.execute(sa.union_all(plan, routine)):
        done, total = counts.get(row.user_id, (0, 0))
        counts[row.user_id] = (done + row.done, total + row.total)
    return counts


def record_days(connection: sa.Connection, records: Sequence[DayRecord]) -> set[uuid.UUID]:
    """Insert the performance history rows; return the users whose row was new.

    A row already there (never expected: closing is transactional) is left alone, and its user's
    streak must then not move again.
    """
    rows = _rows(
        "day_record",
        user_id=(sa.Uuid(), [r.user_id for r in records]),
        day=(sa.Date(), [r.day for r in records]),
        completed_tasks=(sa.Integer(), [r.completed for r in records]),
        total_tasks=(sa.Integer(), [r.total for r in records]),
        score=(sa.Numeric(5, 2), [r.score for r in records]),
        threshold=(sa.SmallInteger(), [r.threshold for r in records]),
    )
    statement = (
        insert(PerformanceHistory)
        .from_select(
            ["user_id", "day", "completed_tasks", "total_tasks", "score", "threshold"],
            sa.select(rows),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "day"])
        .returning(PerformanceHistory.user_id)
    )
    return set(connection.scalars(statement))


def reset_routines(connection: sa.Connection, closings: Sequence[Closing]) -> None:
    """Uncheck the routine tasks that counted as done on the closing day."""
    closing = _closing_rows(closings)
    connection.execute(
        sa.update(RoutineTask)
        .where(
            RoutineTask.routine_id == DailyRoutine.id,
            DailyRoutine.user_id == closing.c.user_id,
            routine_task_done(closing.c.day_start, closing.c.day_end),
        )
        .values(completed=False, completed_at=None)
    )


def carry_over(connection: sa.Connection, closings: Sequence[Closing]) -> None:
    """Move the unfinished tasks of each closing day's plan to the next day's plan or the inbox."""
    moving = [c for c in closings if c.carry_over is not CarryOver.NONE]
    if not moving:
        return
    closing = _closing_rows(moving)
    unfinished = (
        sa.select(
            Task.id.label("task_id"), closing.c.user_id, closing.c.next_day, closing.c.carry_over
        )
        .select_from(closing)
        .join(
            TodaysPlan,
            sa.and_(TodaysPlan.user_id == closing.c.user_id, TodaysPlan.plan_date == closing.c.day),
        )
        .join(Task, Task.plan_id == TodaysPlan.id)
        .where(sa.not_(plan_task_done(closing.c.day_end)))
        .cte("unfinished")
    )
    connection.execute(
        insert(TodaysPlan)
        .from_select(
            ["user_id", "plan_date"],
            sa.select(unfinished.c.user_id, unfinished.c.next_day)
            .where(unfinished.c.carry_over == CarryOver.NEXT_DAY.value)
            .distinct(),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "plan_date"])
    )
    next_plan = sa.orm.aliased(TodaysPlan)
    destination = (
        sa.select(unfinished.c.task_id, next_plan.id.label("plan_id"))
        .outerjoin(
            next_plan,
            sa.and_(
                unfinished.c.carry_over == CarryOver.NEXT_DAY.value,
                next_plan.user_id == unfinished.c.user_id,
                next_plan.plan_date == unfinished.c.next_day,
            ),
        )
        .subquery()
    )
    connection.execute(
        sa.update(Task)
        .where(Task.id == destination.c.task_id)
        .values(plan_id=destination.c.plan_id)
    )


def read_streaks(
    connection: sa.Connection, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, StreakValue]:
    ids = list(user_ids)
    rows = connection.execute(
        sa.select(Streak.user_id, Streak.current, Streak.longest, Streak.last_activity_date).where(
            Streak.user_id.in_(ids)
        )
    )
    return {
        row.user_id: StreakValue(
            current=row.current, longest=row.longest, last_activity_date=row.last_activity_date
        )
        for row in rows
    }


def save_streaks(connection: sa.Connection, streaks: dict[uuid.UUID, StreakValue]) -> None:
    if not streaks:
        return
    rows = _rows(
        "streak",
        user_id=(sa.Uuid(), list(streaks)),
        current=(sa.Integer(), [s.current for s in streaks.values()]),
        longest=(sa.Integer(), [s.longest for s in streaks.values()]),
        last_activity_date=(sa.Date(), [s.last_activity_date for s in streaks.values()]),
    )
    statement = insert(Streak).from_select(
        ["user_id", "current", "longest", "last_activity_date"], sa.select(rows)
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "current": statement.excluded.current,
                "longest": statement.excluded.longest,
                "last_activity_date": statement.excluded.last_activity_date,
            },
        )
    )


def save_progress(connection: sa.Connection, progress: Sequence[Progress]) -> None:
    """Record each user's next open date and when it falls due; clear any earlier failure."""
    rows = _rows(
        "progress",
        user_id=(sa.Uuid(), [p.user_id for p in progress]),
        next_date=(sa.Date(), [p.next_date for p in progress]),
        due_at=(sa.DateTime(timezone=True), [p.due_at for p in progress]),
        zone=(sa.Text(), [p.zone for p in progress]),
    )
    connection.execute(
        sa.update(User)
        .where(User.id == rows.c.user_id)
        .values(
            rollover_next_date=rows.c.next_date,
            rollover_due_at=rows.c.due_at,
            rollover_zone=rows.c.zone,
            rollover_retry_at=None,
            rollover_error=None,
        )
    )


def mark_failed(
    connection: sa.Connection, user_id: uuid.UUID, *, error: str, retry_at: dt.datetime
) -> None:
    connection.execute(
        sa.update(User)
        .where(User.id == user_id)
        .values(rollover_error=error[:500], rollover_retry_at=retry_at)
    )


def count_users_with_work(connection: sa.Connection, *, now: dt.datetime) -> int:
    """How many users a sweep at `now` has to visit (for a progress bar)."""
    query = sa.select(sa.func.count()).where(
        sa.or_(
            User.rollover_due_at <= now,
            User.rollover_due_at.is_(None),
            User.rollover_zone.is_distinct_from(User.timezone),
        )
    )
    return connection.scalar(query) or 0


def oldest_open_due_at(connection: sa.Connection) -> dt.datetime | None:
    """When the longest-waiting user-day became due (an index lookup: `min` on the index)."""
    return connection.scalar(sa.select(sa.func.min(User.rollover_due_at)))
