"""The rollover's set-based SQL: each statement handles a whole batch of user-days at once.

The rules (what is due, scores, streaks) are decided in `planner_jobs.domain`; these statements
gather the counts they need and write the outcome. The predicates "done on that day" mirror
`planner_jobs.domain.carry_over` and are tested against it.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from planner_jobs.db import arrays
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
from planner_jobs.domain.streaks import Protection
from planner_jobs.domain.streaks import Streak as StreakValue


@dataclass(frozen=True)
class ClaimedUser:
    id: uuid.UUID
    timezone: str
    created_at: dt.datetime
    streak_threshold: int | None
    carry_over: CarryOver
    next_date: dt.date | None
    protection: Protection  # as the row is now: each date it closes reads it so
    day_starts_at: dt.time = dt.time(0)  # the user's boundary between two dates


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
    streak_effect: str


@dataclass(frozen=True)
class Progress:
    """Where a user's calendar stands after a batch."""

    user_id: uuid.UUID
    next_date: dt.date
    due_at: dt.datetime
    zone: str
    day_starts_at: dt.time = dt.time(0)


def _closing_rows(closings: Sequence[Closing], *columns: str) -> sa.TableValuedAlias:
    """The closing user-days as a table (only the `columns` a statement needs)."""
    one_day = dt.timedelta(days=1)
    available: dict[str, tuple[TypeEngine[Any], Callable[[Closing], Any]]] = {
        "user_id": (sa.Uuid(), lambda c: c.user_id),
        "day": (sa.Date(), lambda c: c.day),
        "next_day": (sa.Date(), lambda c: c.day + one_day),
        "day_start": (sa.DateTime(timezone=True), lambda c: c.start),
        "day_end": (sa.DateTime(timezone=True), lambda c: c.end),
        "carry_over": (sa.Text(), lambda c: c.carry_over.value),
    }
    return arrays.rows(
        "closing",
        **{
            name: (available[name][0], [available[name][1](c) for c in closings])
            for name in columns
        },
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


def prefer_index_lookups(connection: sa.Connection) -> None:
    """For the rest of this transaction, join through indexes only.

    Every statement of a batch joins a few thousand claimed rows (an exact array) to a big
    table by an indexed key. Costing one statement at a time, PostgreSQL prefers hashing the
    whole big table (measured: a 500,000-row scan per batch to update 10,000 tasks), which makes
    a sweep cost users x batches. Without hash and merge joins the only plan left is an index
    lookup per claimed row, so a batch costs in proportion to its size, whatever the table size.
    """
    connection.execute(sa.text("SET LOCAL enable_hashjoin = off"))
    connection.execute(sa.text("SET LOCAL enable_mergejoin = off"))


LOCK_WAIT = "2s"  # the longest a batch's statement waits for a row another transaction holds


def prefer_index_lookups_and_short_lock_waits(connection: sa.Connection) -> None:
    """`prefer_index_lookups`, and a statement that waits over `LOCK_WAIT` for a row that
    another program's transaction holds fails (SQLSTATE 55P03) instead of holding up the
    batch: its user is closed in a later pass (`jobs.rollover`)."""
    prefer_index_lookups(connection)
    connection.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))


def has_work(now: dt.datetime) -> ColumnElement[bool]:
    """A user with rollover work at `now`: a due day, or not planned yet (a new row, a zone
    that changed). Each branch is served by an index."""
    return sa.or_(User.rollover_due_at <= now, _UNPLANNED)


# Not planned yet: a new row, or a zone or a day boundary that changed (partial index
# ix_users_rollover_unplanned).
_UNPLANNED = sa.or_(
    User.rollover_due_at.is_(None),
    User.rollover_zone.is_distinct_from(User.timezone),
    User.rollover_day_starts_at.is_distinct_from(User.day_starts_at),
)


def claim_users(
    connection: sa.Connection,
    *,
    now: dt.datetime,
    limit: int,
    excluding: Sequence[uuid.UUID] = (),
    only: Sequence[uuid.UUID] | None = None,
) -> list[ClaimedUser]:
    """Lock up to `limit` users with rollover work and not backing off (`only` some of them;
    never those `excluding` names).

    `SKIP LOCKED` lets concurrent sweeps take disjoint batches; each branch of the condition is
    served by an index, so the cost follows the users found, not the users that exist.
    """
    not_backing_off = sa.or_(User.rollover_retry_at.is_(None), User.rollover_retry_at <= now)
    where = sa.and_(has_work(now), not_backing_off)
    if excluding:
        where = sa.and_(where, User.id != sa.all_(_uuids("excluding", excluding)))
    if only is not None:
        where = sa.and_(where, User.id == sa.any_(_uuids("only", only)))
    return _claim(connection, where, limit=limit)


def _uuids(name: str, ids: Iterable[uuid.UUID]) -> sa.BindParameter[Any]:
    return sa.bindparam(name, list(ids), type_=ARRAY(sa.Uuid()))


_CARRY_OVER = {mode.value: mode for mode in CarryOver}


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
            User.days_off,
            User.vacation_start,
            User.vacation_end,
            User.day_starts_at,
        )
        .where(where)
        .limit(limit)
        # FOR NO KEY UPDATE: held against other sweeps and any change of the row, not against
        # the foreign-key checks (FOR KEY SHARE) of the main app's inserts about the user.
        .with_for_update(skip_locked=True, key_share=True)
    )
    return [
        ClaimedUser(
            id=row.id,
            timezone=row.timezone,
            created_at=row.created_at,
            streak_threshold=row.streak_threshold,
            carry_over=_CARRY_OVER[row.carry_over],
            next_date=row.rollover_next_date,
            protection=Protection(
                days_off=row.days_off,
                vacation_start=row.vacation_start,
                vacation_end=row.vacation_end,
            ),
            day_starts_at=row.day_starts_at,
        )
        for row in connection.execute(query)
    ]


@dataclass(frozen=True)
class DayContents:
    """What a closing user-day holds."""

    completed: int = 0
    total: int = 0
    unfinished: int = 0  # tasks of the day's plan that were not done: carried over


def begin_closing(
    connection: sa.Connection, closings: Sequence[Closing]
) -> dict[uuid.UUID, DayContents]:
    """Count each closing user-day, and do the part of closing it that needs no score.

    One statement walks each day's plan and the user's routines once: it counts their tasks
    (the counts come back), unchecks the routine tasks that counted as done, and creates the
    next day's plan for users who carry unfinished tasks there (`move_unfinished` then moves
    them). Everything commits with the rest of the batch or not at all.
    """
    rows = _closing_rows(
        closings, "user_id", "day", "next_day", "day_start", "day_end", "carry_over"
    )
    closing = sa.select(rows).cte("closing_days")
    routine_rows = (
        sa.select(
            closing.c.user_id,
            closing.c.day_start,
            closing.c.day_end,
            RoutineTask.id.label("task_id"),
            routine_task_done(closing.c.day_start, closing.c.day_end).label("done"),
        )
        .select_from(closing)
        .join(DailyRoutine, DailyRoutine.user_id == closing.c.user_id)
        .join(RoutineTask, RoutineTask.routine_id == DailyRoutine.id)
        .cte("routine_rows")
    )
    plan_rows = (
        sa.select(
            closing.c.user_id,
            closing.c.next_day,
            closing.c.carry_over,
            plan_task_done(closing.c.day_end).label("done"),
        )
        .select_from(closing)
        .join(
            TodaysPlan,
            sa.and_(TodaysPlan.user_id == closing.c.user_id, TodaysPlan.plan_date == closing.c.day),
        )
        .join(Task, Task.plan_id == TodaysPlan.id)
        .cte("plan_rows")
    )
    # The predicate is evaluated again on each row under its lock: a routine task the user
    # completed again after midnight, while the sweep ran, keeps its new state.
    reset = (
        sa.update(RoutineTask)
        .where(
            RoutineTask.id == routine_rows.c.task_id,
            routine_rows.c.done,
            routine_task_done(routine_rows.c.day_start, routine_rows.c.day_end),
        )
        .values(completed=False, completed_at=None)
        .returning(RoutineTask.id)
        .cte("reset")
    )
    next_plans = (
        insert(TodaysPlan)
        .from_select(
            ["user_id", "plan_date"],
            sa.select(plan_rows.c.user_id, plan_rows.c.next_day)
            .where(sa.not_(plan_rows.c.done), plan_rows.c.carry_over == CarryOver.NEXT_DAY.value)
            .distinct(),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "plan_date"])
        .returning(TodaysPlan.id)
        .cte("next_plans")
    )
    counts = sa.union_all(
        sa.select(
            sa.literal(True).label("plan"),
            plan_rows.c.user_id,
            sa.func.count().label("total"),
            sa.func.count().filter(plan_rows.c.done).label("done"),
        ).group_by(plan_rows.c.user_id),
        sa.select(
            sa.literal(False),
            routine_rows.c.user_id,
            sa.func.count(),
            sa.func.count().filter(routine_rows.c.done),
        ).group_by(routine_rows.c.user_id),
    ).add_cte(reset, next_plans)
    contents: dict[uuid.UUID, DayContents] = {}
    for plan, user_id, total, done in connection.execute(counts).all():
        held = contents.get(user_id, DayContents())
        contents[user_id] = DayContents(
            completed=held.completed + done,
            total=held.total + total,
            unfinished=held.unfinished + (total - done if plan else 0),
        )
    return contents


class HistoryMonthsMissing(Exception):
    """Days to record fall in months whose partition of the history is not made yet: the
    caller ends its transaction and makes them (`make_history_months`)."""

    def __init__(self, months: Sequence[dt.date]) -> None:
        super().__init__(
            f"no partition of performance_history yet for {', '.join(map(str, months))}"
        )
        self.months = list(months)


def make_history_months(engine: sa.Engine, days: Iterable[dt.date], *, attempts: int = 8) -> None:
    """Make the partitions of the history for the months of `days` that have none (migration
    0024), in a transaction of its own.

    Attaching a partition waits for every transaction writing a user (the foreign key takes
    SHARE ROW EXCLUSIVE on `users`) and holds up those that come after it: each attempt gives
    up after 100 ms, and the next comes after a pause that doubles (8 attempts: 12.8 s in all).
    """
    wanted = sorted(set(days))
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("SET LOCAL lock_timeout = '100ms'"))
                connection.execute(
                    sa.text("SELECT planner_history_months(:days)"), {"days": wanted}
                )
            return
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03" or attempt == attempts - 1:
                raise
        time.sleep(0.05 * 2**attempt)


def record_days(connection: sa.Connection, records: Sequence[DayRecord]) -> set[uuid.UUID]:
    """Insert the performance history rows; return the users whose row was new.

    A row already there (never expected: closing is transactional) is left alone, and its user's
    streak must then not move again. Asked with NOT EXISTS rather than ON CONFLICT: the claim
    holds the user's row, so no other sweep inserts theirs meanwhile, and ON CONFLICT makes
    every insert speculative (a second WAL record per row, 47 bytes a user-day in
    `bench/rollover.py`). Another program inserting the same day at that moment fails the batch
    on the unique key, and the user alone is then retried later.
    """
    missing = connection.scalar(
        sa.text("SELECT planner_history_missing_months(:days)"),
        {"days": sorted({r.day for r in records})},
    )
    if missing:
        raise HistoryMonthsMissing(missing)
    rows = arrays.rows(
        "day_record",
        user_id=(sa.Uuid(), [r.user_id for r in records]),
        day=(sa.Date(), [r.day for r in records]),
        completed_tasks=(sa.Integer(), [r.completed for r in records]),
        total_tasks=(sa.Integer(), [r.total for r in records]),
        score=(sa.Numeric(5, 2), [r.score for r in records]),
        threshold=(sa.SmallInteger(), [r.threshold for r in records]),
        streak_effect=(sa.Text(), [r.streak_effect for r in records]),
    )
    statement = (
        insert(PerformanceHistory)
        .from_select(
            [
                "user_id",
                "day",
                "completed_tasks",
                "total_tasks",
                "score",
                "threshold",
                "streak_effect",
            ],
            sa.select(rows).where(
                ~sa.exists().where(
                    PerformanceHistory.user_id == rows.c.user_id,
                    PerformanceHistory.day == rows.c.day,
                )
            ),
        )
        .returning(PerformanceHistory.user_id)
    )
    return set(connection.scalars(statement))


def move_unfinished(connection: sa.Connection, closings: Sequence[Closing]) -> None:
    """Move the unfinished tasks of each closing day's plan to the next day's plan (made by
    `begin_closing`) or to the inbox. `closings` are the user-days that have some to move."""
    moving = [c for c in closings if c.carry_over is not CarryOver.NONE]
    if not moving:
        return
    closing = _closing_rows(moving, "user_id", "day", "next_day", "day_end", "carry_over")
    next_plan = sa.orm.aliased(TodaysPlan)
    destination = (
        sa.select(Task.id.label("task_id"), next_plan.id.label("plan_id"))
        .select_from(closing)
        .join(
            TodaysPlan,
            sa.and_(TodaysPlan.user_id == closing.c.user_id, TodaysPlan.plan_date == closing.c.day),
        )
        .join(Task, Task.plan_id == TodaysPlan.id)
        .outerjoin(
            next_plan,
            sa.and_(
                closing.c.carry_over == CarryOver.NEXT_DAY.value,
                next_plan.user_id == closing.c.user_id,
                next_plan.plan_date == closing.c.next_day,
            ),
        )
        .where(sa.not_(plan_task_done(closing.c.day_end)))
        .subquery("destination")
    )
    # The update re-checks "unfinished" under the row lock: a task completed before midnight
    # while the sweep ran stays where it is.
    target = sa.orm.aliased(Task)
    connection.execute(
        sa.update(target)
        .where(target.id == destination.c.task_id)
        .values(plan_id=destination.c.plan_id)
    )


def read_streaks(
    connection: sa.Connection, user_ids: Iterable[uuid.UUID]
) -> tuple[dict[uuid.UUID, StreakValue], set[uuid.UUID]]:
    """The streaks of the users, locked until the batch commits (a freeze the main app grants
    meanwhile waits, rather than being overwritten by the batch's count); and the users whose
    streak row another transaction holds (`SKIP LOCKED`: they are closed in a later pass, not
    waited for, so one user's row held by the main app never holds up the others)."""
    ids = list(user_ids)
    rows = connection.execute(
        sa.select(
            Streak.user_id,
            Streak.current,
            Streak.longest,
            Streak.last_activity_date,
            Streak.freezes,
        )
        .where(Streak.user_id == sa.any_(_uuids("user_ids", ids)))
        .with_for_update(skip_locked=True)
    ).all()
    streaks = {
        row.user_id: StreakValue(
            current=row.current,
            longest=row.longest,
            last_activity_date=row.last_activity_date,
            freezes=row.freezes,
        )
        for row in rows
    }
    if len(streaks) == len(ids):
        return streaks, set()
    existing = connection.scalars(
        sa.select(Streak.user_id).where(Streak.user_id == sa.any_(_uuids("user_ids", ids)))
    )
    return streaks, set(existing) - streaks.keys()


def save_streaks(connection: sa.Connection, streaks: dict[uuid.UUID, StreakValue]) -> None:
    if not streaks:
        return
    rows = arrays.rows(
        "streak",
        user_id=(sa.Uuid(), list(streaks)),
        current=(sa.Integer(), [s.current for s in streaks.values()]),
        longest=(sa.Integer(), [s.longest for s in streaks.values()]),
        last_activity_date=(sa.Date(), [s.last_activity_date for s in streaks.values()]),
        freezes=(sa.SmallInteger(), [s.freezes for s in streaks.values()]),
    )
    statement = insert(Streak).from_select(
        ["user_id", "current", "longest", "last_activity_date", "freezes"], sa.select(rows)
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "current": statement.excluded.current,
                "longest": statement.excluded.longest,
                "last_activity_date": statement.excluded.last_activity_date,
                "freezes": statement.excluded.freezes,
            },
        )
    )


def save_progress(connection: sa.Connection, progress: Sequence[Progress]) -> None:
    """Record each user's next open date and when it falls due; clear any earlier failure."""
    rows = arrays.rows(
        "progress",
        user_id=(sa.Uuid(), [p.user_id for p in progress]),
        next_date=(sa.Date(), [p.next_date for p in progress]),
        due_at=(sa.DateTime(timezone=True), [p.due_at for p in progress]),
        zone=(sa.Text(), [p.zone for p in progress]),
        day_starts_at=(sa.Time(), [p.day_starts_at for p in progress]),
    )
    connection.execute(
        sa.update(User)
        .where(User.id == rows.c.user_id)
        .values(
            rollover_next_date=rows.c.next_date,
            rollover_due_at=rows.c.due_at,
            rollover_zone=rows.c.zone,
            rollover_day_starts_at=rows.c.day_starts_at,
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
    """How many users a sweep at `now` has to visit (`has_work`), counted branch by branch off
    each branch's index: the users due, and those not planned yet that are not due.

    PostgreSQL cannot estimate `rollover_zone IS DISTINCT FROM timezone` (two columns): it takes
    nearly every user to match, and read them all (18 ms at 100,000 users, 10 times that at a
    million: the slowest query of the Overview), though the partial index of those users is
    usually empty. That branch is therefore counted with sequential scans off, then back on.
    """
    due = connection.scalar(
        sa.select(sa.func.count()).select_from(User).where(User.rollover_due_at <= now)
    )
    connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
    try:
        unplanned = connection.scalar(
            sa.select(sa.func.count())
            .select_from(User)
            .where(_UNPLANNED, sa.or_(User.rollover_due_at.is_(None), User.rollover_due_at > now))
        )
    finally:
        connection.execute(sa.text("SET LOCAL enable_seqscan = on"))
    return (due or 0) + (unplanned or 0)


def oldest_open_due_at(connection: sa.Connection) -> dt.datetime | None:
    """When the longest-waiting user-day became due (an index lookup: `min` on the index)."""
    return connection.scalar(sa.select(sa.func.min(User.rollover_due_at)))


def lag_seconds(connection: sa.Connection, *, now: dt.datetime) -> float:
    """The rollover lag at `now`: the age of the oldest user-day due and not closed (0 when
    none is)."""
    oldest = oldest_open_due_at(connection)
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


@dataclass(frozen=True)
class BackingOff:
    users: int  # whose last rollover failed on their own data, waiting to be retried
    last_error: str | None  # the newest of their errors


def backing_off(connection: sa.Connection, *, now: dt.datetime) -> BackingOff:
    waiting = User.rollover_retry_at > now
    users = connection.scalar(sa.select(sa.func.count()).where(waiting)) or 0
    error = connection.scalar(
        sa.select(User.rollover_error)
        .where(waiting)
        .order_by(User.rollover_retry_at.desc())
        .limit(1)
    )
    return BackingOff(users=users, last_error=error)
