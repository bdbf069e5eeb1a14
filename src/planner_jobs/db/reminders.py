"""Reminders: the tasks whose reminder is due, and which `remind_at` each was handled for; the
routine tasks whose daily reminder is due, and when each falls next; the users whose streak
nudge is due, their day's tasks so far, and when each nudge falls next."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from planner_jobs.db import arrays
from planner_jobs.db.models import DailyRoutine, RoutineTask, Task, TodaysPlan, User
from planner_jobs.db.rollover import plan_task_done, prefer_index_lookups, routine_task_done
from planner_jobs.domain.streaks import Protection


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


# --- routine reminders ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutineReminder:
    """A routine task whose reminder is due or not planned yet, with what decides it."""

    task_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    remind_time: dt.time
    completed: bool
    completed_at: dt.datetime | None
    pending: dt.date | None  # the date planned; None when not planned for this `remind_time`
    timezone: str
    day_starts_at: dt.time
    protection: Protection


# Each branch off its own partial index, and locked there: a due reminder in the order of its
# instant (one handled moves to the next day, out of the range), then those not planned yet.
# A single statement joining users first walked, batch after batch, past every user already
# handled (measured: 100,000 reminders in 45 s, each batch slower than the one before).
_DUE_IDS = sa.text(
    """
    SELECT id FROM routine_tasks
     WHERE remind_time IS NOT NULL AND reminder_at <= :now
     ORDER BY reminder_at
     LIMIT :limit
       FOR UPDATE SKIP LOCKED
    """
)
_UNPLANNED_IDS = sa.text(
    """
    SELECT id FROM routine_tasks
     WHERE remind_time IS NOT NULL  -- ix_routine_tasks_reminder_unplanned's predicate
       AND (reminder_at IS NULL OR reminder_time IS DISTINCT FROM remind_time)
     LIMIT :limit
       FOR UPDATE SKIP LOCKED
    """
)
_ROUTINE_DETAILS = sa.text(
    """
    SELECT t.id, r.user_id, t.title, t.remind_time, t.completed, t.completed_at,
           CASE WHEN t.reminder_time = t.remind_time THEN t.reminder_date END AS pending,
           u.timezone, u.day_starts_at, u.days_off, u.vacation_start, u.vacation_end
      FROM routine_tasks t
      JOIN daily_routines r ON r.id = t.routine_id
      JOIN users u ON u.id = r.user_id
     WHERE t.id = ANY(:ids)
    """
).bindparams(sa.bindparam("ids", type_=ARRAY(sa.Uuid())))


def claim_routine_reminders(
    connection: sa.Connection, *, now: dt.datetime, limit: int
) -> list[RoutineReminder]:
    """Lock up to `limit` routine tasks whose reminder is due at `now`, or not planned yet
    (others' locked ones are skipped), with what decides each."""
    ids = list(connection.scalars(_DUE_IDS, {"now": now, "limit": limit}))
    if len(ids) < limit:
        ids += connection.scalars(_UNPLANNED_IDS, {"limit": limit - len(ids)})
    if not ids:
        return []
    return [
        RoutineReminder(
            task_id=row.id,
            user_id=row.user_id,
            title=row.title,
            remind_time=row.remind_time,
            completed=row.completed,
            completed_at=row.completed_at,
            pending=row.pending,
            timezone=row.timezone,
            day_starts_at=row.day_starts_at,
            protection=Protection(row.days_off, row.vacation_start, row.vacation_end),
        )
        for row in connection.execute(_ROUTINE_DETAILS, {"ids": ids})
    ]


@dataclass(frozen=True)
class RoutinePlan:
    task_id: uuid.UUID
    day: dt.date
    at: dt.datetime
    remind_time: dt.time


def plan_routine_reminders(connection: sa.Connection, plans: Sequence[RoutinePlan]) -> None:
    """Record each routine task's next reminder: its date, instant and the time it is for."""
    if not plans:
        return
    rows = arrays.rows(
        "planned",
        task_id=(sa.Uuid(), [p.task_id for p in plans]),
        day=(sa.Date(), [p.day for p in plans]),
        at=(sa.DateTime(timezone=True), [p.at for p in plans]),
        remind_time=(sa.Time(), [p.remind_time for p in plans]),
    )
    connection.execute(
        sa.update(RoutineTask)
        .where(RoutineTask.id == rows.c.task_id)
        .values(
            reminder_date=rows.c.day,
            reminder_at=rows.c.at,
            reminder_time=rows.c.remind_time,
        )
    )


# --- the streak-at-risk nudge -----------------------------------------------------------------


@dataclass(frozen=True)
class StreakNudge:
    """A user whose streak nudge is due or not planned yet, with what decides it."""

    user_id: uuid.UUID
    remind_time: dt.time
    pending: dt.date | None  # the date planned; None when not planned for this `remind_time`
    timezone: str
    day_starts_at: dt.time
    protection: Protection
    streak_threshold: int | None
    streak: int  # the current streak (0 without a row)


# As for routine reminders: each branch off its own partial index. FOR NO KEY UPDATE: the main
# app's inserts of rows that reference the user (a foreign key's share lock) never wait on it.
_NUDGE_DUE_IDS = sa.text(
    """
    SELECT id FROM users
     WHERE streak_reminder_at IS NOT NULL AND streak_nudge_at <= :now
     ORDER BY streak_nudge_at
     LIMIT :limit
       FOR NO KEY UPDATE SKIP LOCKED
    """
)
_NUDGE_UNPLANNED_IDS = sa.text(
    """
    SELECT id FROM users
     WHERE streak_reminder_at IS NOT NULL  -- ix_users_streak_nudge_unplanned's predicate
       AND (streak_nudge_at IS NULL OR streak_nudge_time IS DISTINCT FROM streak_reminder_at)
     LIMIT :limit
       FOR NO KEY UPDATE SKIP LOCKED
    """
)
_NUDGE_DETAILS = sa.text(
    """
    SELECT u.id, u.streak_reminder_at,
           CASE WHEN u.streak_nudge_time = u.streak_reminder_at THEN u.streak_nudge_date END
               AS pending,
           u.timezone, u.day_starts_at, u.days_off, u.vacation_start, u.vacation_end,
           u.streak_threshold, coalesce(s.current, 0) AS streak
      FROM users u
      LEFT JOIN streaks s ON s.user_id = u.id
     WHERE u.id = ANY(:ids)
    """
).bindparams(sa.bindparam("ids", type_=ARRAY(sa.Uuid())))


def claim_streak_nudges(
    connection: sa.Connection, *, now: dt.datetime, limit: int
) -> list[StreakNudge]:
    """Lock up to `limit` users whose streak nudge is due at `now`, or not planned yet (others'
    locked ones are skipped), with what decides each."""
    ids = list(connection.scalars(_NUDGE_DUE_IDS, {"now": now, "limit": limit}))
    if len(ids) < limit:
        ids += connection.scalars(_NUDGE_UNPLANNED_IDS, {"limit": limit - len(ids)})
    if not ids:
        return []
    return [
        StreakNudge(
            user_id=row.id,
            remind_time=row.streak_reminder_at,
            pending=row.pending,
            timezone=row.timezone,
            day_starts_at=row.day_starts_at,
            protection=Protection(row.days_off, row.vacation_start, row.vacation_end),
            streak_threshold=row.streak_threshold,
            streak=row.streak,
        )
        for row in connection.execute(_NUDGE_DETAILS, {"ids": ids})
    ]


@dataclass(frozen=True)
class OpenDay:
    """A user's date not closed yet, and its bounds."""

    user_id: uuid.UUID
    day: dt.date
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Tally:
    completed: int = 0
    total: int = 0


def tally_days(connection: sa.Connection, days: Sequence[OpenDay]) -> dict[uuid.UUID, Tally]:
    """Each user's tasks of the date as they are now, counted by the rollover's rule: the plan's
    tasks and the routine tasks, and of those the ones done inside the date (one statement for
    the batch; a user with nothing counted is absent)."""
    if not days:
        return {}
    prefer_index_lookups(connection)
    asked = arrays.rows(
        "asked",
        user_id=(sa.Uuid(), [d.user_id for d in days]),
        day=(sa.Date(), [d.day for d in days]),
        day_start=(sa.DateTime(timezone=True), [d.start for d in days]),
        day_end=(sa.DateTime(timezone=True), [d.end for d in days]),
    )
    counts = sa.union_all(
        sa.select(
            asked.c.user_id,
            sa.func.count().label("total"),
            sa.func.count().filter(plan_task_done(asked.c.day_end)).label("done"),
        )
        .select_from(asked)
        .join(
            TodaysPlan,
            sa.and_(TodaysPlan.user_id == asked.c.user_id, TodaysPlan.plan_date == asked.c.day),
        )
        .join(Task, Task.plan_id == TodaysPlan.id)
        .group_by(asked.c.user_id),
        sa.select(
            asked.c.user_id,
            sa.func.count(),
            sa.func.count().filter(routine_task_done(asked.c.day_start, asked.c.day_end)),
        )
        .select_from(asked)
        .join(DailyRoutine, DailyRoutine.user_id == asked.c.user_id)
        .join(RoutineTask, RoutineTask.routine_id == DailyRoutine.id)
        .group_by(asked.c.user_id),
    )
    tallies: dict[uuid.UUID, Tally] = {}
    for user_id, total, done in connection.execute(counts):
        held = tallies.get(user_id, Tally())
        tallies[user_id] = Tally(completed=held.completed + done, total=held.total + total)
    return tallies


@dataclass(frozen=True)
class NudgePlan:
    user_id: uuid.UUID
    day: dt.date
    at: dt.datetime
    remind_time: dt.time


def plan_streak_nudges(connection: sa.Connection, plans: Sequence[NudgePlan]) -> None:
    """Record each user's next streak nudge: its date, instant and the time it is for."""
    if not plans:
        return
    rows = arrays.rows(
        "planned",
        user_id=(sa.Uuid(), [p.user_id for p in plans]),
        day=(sa.Date(), [p.day for p in plans]),
        at=(sa.DateTime(timezone=True), [p.at for p in plans]),
        remind_time=(sa.Time(), [p.remind_time for p in plans]),
    )
    connection.execute(
        sa.update(User)
        .where(User.id == rows.c.user_id)
        .values(
            streak_nudge_date=rows.c.day,
            streak_nudge_at=rows.c.at,
            streak_nudge_time=rows.c.remind_time,
        )
    )
