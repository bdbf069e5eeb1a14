"""The data of one user's export, read in one consistent snapshot through server-side cursors."""

from __future__ import annotations

import datetime as dt
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import sqlalchemy as sa

from planner_jobs.db.models import (
    ActivityLog,
    DailyRoutine,
    Goal,
    PerformanceHistory,
    RoutineTask,
    Streak,
    Task,
    TodaysPlan,
    User,
)
from planner_jobs.domain.days import Zone, resolve_zone
from planner_jobs.domain.exports.data import (
    ActivityRow,
    DayRow,
    ExportData,
    GoalRow,
    RoutineRow,
    RoutineTaskRow,
    StreakRow,
    TaskRow,
    UserRow,
)

STREAM_ROWS = 2000  # rows fetched per round trip from the server-side cursors

Query: TypeAlias = "sa.Select[*tuple[Any, ...]]"


def read_export_data(
    connection: sa.Connection,
    user_id: uuid.UUID,
    *,
    exported_at: dt.datetime,
    tasks_by_plan: bool = False,
    check: Callable[[], None] = lambda: None,
) -> ExportData:
    """The user's data as lazy iterables over server-side cursors.

    Tasks come in creation order, read straight off an index (rows flow at once), or grouped
    by plan date (inbox first) with `tasks_by_plan`, which needs a sort first.

    Run it on a connection in a REPEATABLE READ READ ONLY transaction: every section then
    comes from the same snapshot. `check()` is called every few thousand rows (a worker uses it
    to notice a shutdown). Only this user's rows are read, and never their reset token or push
    subscriptions.
    """
    timezone = connection.scalar(sa.select(User.timezone).where(User.id == user_id))
    _render_instants_in(connection, resolve_zone(timezone or "UTC"))
    # The sections come sorted: let a million-row sort happen in memory, not in temp files.
    connection.execute(sa.select(sa.func.set_config("work_mem", "64MB", True)))
    user = connection.execute(
        sa.select(
            _text(User.id),
            User.email,
            User.timezone,
            _iso(User.created_at),
            _iso(sa.literal(exported_at, sa.DateTime(timezone=True))),
        ).where(User.id == user_id)
    ).one()
    streak = connection.execute(
        sa.select(
            Streak.current, Streak.longest, _iso(Streak.last_activity_date), Streak.freezes
        ).where(Streak.user_id == user_id)
    ).one_or_none()
    return ExportData(
        exported_at=user[4],
        user=UserRow._make(user[:4]),
        streak=None if streak is None else StreakRow._make(streak),
        goals=_stream(connection, _goals(user_id), _goal, check),
        tasks=_stream(connection, _tasks(user_id, by_plan=tasks_by_plan), _task, check),
        routines=_routines(connection, user_id, check),
        history=_stream(connection, _history(user_id), _day, check),
        activity=_stream(connection, _activity(user_id), _activity_row, check),
    )


def _render_instants_in(connection: sa.Connection, zone: Zone) -> None:
    """Have this transaction render instants in the user's zone (`_iso`); a zone PostgreSQL
    does not know (or no IANA zone at all) leaves them in UTC, as the rollover does."""
    if not zone.valid:
        return
    known = connection.scalar(
        sa.select(sa.literal(True)).where(
            sa.exists().where(sa.text("name = :zone")).select_from(sa.text("pg_timezone_names"))
        ),
        {"zone": zone.name},
    )
    if known:
        connection.execute(sa.select(sa.func.set_config("TimeZone", zone.name, True)))


def _stream(
    connection: sa.Connection,
    query: Query,
    convert: Callable[[Any], Any],
    check: Callable[[], None],
) -> Iterator[Any]:
    # A server-side cursor on the driver connection (same transaction, same snapshot): the rows
    # stay plain tuples, which halves the cost per row of a million-row export compared with
    # SQLAlchemy result rows (measured with bench/export.py).
    compiled = query.compile(dialect=connection.dialect)
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(name=f"export_{uuid.uuid4().hex}") as cursor:
        cursor.itersize = STREAM_ROWS
        cursor.execute(str(compiled), compiled.params)
        for rows in _read_ahead(lambda: cursor.fetchmany(STREAM_ROWS)):
            check()
            for row in rows:
                yield convert(row)


def _read_ahead(fetch: Callable[[], list[Any]]) -> Iterator[list[Any]]:
    """The batches `fetch()` returns (until an empty one), each fetched while the previous one
    is being written: the server prepares rows while Python formats them."""
    ready: queue.Queue[list[Any] | BaseException] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: list[Any] | BaseException) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            while not stop.is_set():
                batch = fetch()
                hand_over(batch)
                if not batch:
                    return
        except BaseException as exc:  # handed to the reader, who raises it
            hand_over(exc)

    reader = threading.Thread(target=produce, name="export-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        reader.join()


def _goals(user_id: uuid.UUID) -> Query:
    return (
        sa.select(
            _text(Goal.id),
            Goal.title,
            Goal.description,
            _iso(Goal.target_date),
            _iso(Goal.completed_at),
            _iso(Goal.created_at),
        )
        .where(Goal.user_id == user_id)
        .order_by(Goal.created_at, Goal.id)
    )


_goal = GoalRow._make


def _tasks(user_id: uuid.UUID, *, by_plan: bool) -> Query:
    order = (TodaysPlan.plan_date.asc().nulls_first(),) if by_plan else ()
    return (
        sa.select(
            _text(Task.id),
            Task.title,
            Task.notes,
            Task.completed,
            _iso(Task.completed_at),
            _iso(Task.due_at),
            _iso(Task.remind_at),
            _iso(TodaysPlan.plan_date),
            _text(Task.goal_id),
            _iso(Task.created_at),
        )
        .outerjoin(TodaysPlan, TodaysPlan.id == Task.plan_id)
        .where(Task.user_id == user_id)
        .order_by(*order, Task.created_at, Task.id)
    )


_task = TaskRow._make


def _routines(
    connection: sa.Connection, user_id: uuid.UUID, check: Callable[[], None]
) -> Iterator[RoutineRow]:
    query = (
        sa.select(
            _text(DailyRoutine.id),
            DailyRoutine.name,
            _iso(DailyRoutine.created_at),
            _text(RoutineTask.id),
            RoutineTask.title,
            RoutineTask.position,
            RoutineTask.completed,
            _iso(RoutineTask.completed_at),
        )
        .outerjoin(RoutineTask, RoutineTask.routine_id == DailyRoutine.id)
        .where(DailyRoutine.user_id == user_id)
        .order_by(DailyRoutine.created_at, DailyRoutine.id, RoutineTask.position, RoutineTask.id)
    )
    current: tuple[Any, ...] | None = None
    steps: list[RoutineTaskRow] = []
    for row in _stream(connection, query, tuple, check):
        if current is None or row[0] != current[0]:
            if current is not None:
                yield RoutineRow(current[0], current[1], current[2], tuple(steps))
            current, steps = row, []
        if row[3] is not None:
            steps.append(RoutineTaskRow._make(row[3:]))
    if current is not None:
        yield RoutineRow(current[0], current[1], current[2], tuple(steps))


def _history(user_id: uuid.UUID) -> Query:
    return (
        sa.select(
            _iso(PerformanceHistory.day),
            PerformanceHistory.completed_tasks,
            PerformanceHistory.total_tasks,
            PerformanceHistory.score,
            PerformanceHistory.streak_effect,
        )
        .where(PerformanceHistory.user_id == user_id)
        .order_by(PerformanceHistory.day)
    )


_day = DayRow._make


def _activity(user_id: uuid.UUID) -> Query:
    return (
        sa.select(
            _text(ActivityLog.id),
            ActivityLog.kind,
            ActivityLog.message,
            _iso(ActivityLog.created_at),
        )
        .where(ActivityLog.user_id == user_id)
        .order_by(ActivityLog.created_at, ActivityLog.id)
    )


_activity_row = ActivityRow._make


def _iso(column: Any) -> Any:
    """An instant (in the session's zone, with its offset) or a date as ISO 8601 text, rendered
    by the server: cheaper than a Python datetime per value, and on the other core."""
    return sa.func.to_json(column).op("#>>", return_type=sa.Text())(sa.literal_column("'{}'"))


def _text(column: Any) -> Any:
    """An id as text, cast by the server: cheaper than a `uuid.UUID` per row, then `str()`."""
    return sa.cast(column, sa.Text)
