"""The read-only views of the inspection room, each a few index lookups on one connection."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from croniter import croniter

from planner_jobs.db import activity
from planner_jobs.db.engine import database_now as database_now  # the views' clock
from planner_jobs.db.migrate import current_revision, head_revision
from planner_jobs.jobs.app import PERIODIC, TASKS
from planner_jobs.jobs.queues import QUEUES, STATUSES

UNFINISHED = ("todo", "doing", "failed", "cancelled", "aborted")  # counted exactly, row by row


# --- queues -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueView:
    name: str
    counts: dict[str, int]  # jobs kept, by status (succeeded: finished in the last hour)
    oldest_ready_seconds: float | None  # how long the oldest job ready to run has waited


_UNFINISHED_COUNTS = sa.text(
    "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs"
    " WHERE status <> 'succeeded' GROUP BY 1, 2"
)
# Ready since: its time when scheduled, else when it was queued (its first event).
_OLDEST_READY = sa.text(
    """
    SELECT q.queue_name, extract(epoch FROM now() - least(
        (SELECT min(j.scheduled_at) FROM procrastinate_jobs j
          WHERE j.status = 'todo' AND j.queue_name = q.queue_name AND j.scheduled_at <= now()),
        (SELECT (SELECT min(e.at) FROM procrastinate_events e WHERE e.job_id = j.id)
           FROM procrastinate_jobs j
          WHERE j.status = 'todo' AND j.queue_name = q.queue_name AND j.scheduled_at IS NULL
          ORDER BY j.id LIMIT 1)))
      FROM unnest(CAST(:queues AS text[])) AS q(queue_name)
    """
)


def queues(connection: sa.Connection) -> list[QueueView]:
    counts: dict[str, dict[str, int]] = {q: dict.fromkeys(STATUSES, 0) for q in QUEUES}
    for queue, status, count in connection.execute(_UNFINISHED_COUNTS):
        counts.setdefault(queue, dict.fromkeys(STATUSES, 0))[status] = count
    for queue, count in _finished_last_hour(connection).items():
        counts.setdefault(queue, dict.fromkeys(STATUSES, 0))["succeeded"] = count
    oldest: dict[str, Any] = {
        queue: age for queue, age in connection.execute(_OLDEST_READY, {"queues": list(counts)})
    }
    return [
        QueueView(name, counts[name], None if oldest.get(name) is None else float(oldest[name]))
        for name in counts
    ]


def _finished_last_hour(connection: sa.Connection) -> dict[str, int]:
    rows = connection.execute(
        sa.text(
            "SELECT queue, sum(count) FROM job_counts"
            " WHERE outcome = 'succeeded' AND minute >= now() - interval '1 hour' GROUP BY queue"
        )
    )
    return {queue: int(total) for queue, total in rows}


# --- jobs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    id: int
    queue: str
    task: str
    status: str
    attempts: int
    scheduled_at: dt.datetime | None
    queued_at: dt.datetime | None
    updated_at: dt.datetime | None
    lock: str | None
    queueing_lock: str | None
    worker_id: int | None


# Job `j` runs on a worker silent for `:stalled_after` seconds (maintenance hands such jobs back).
STALLED = (
    "(j.status = 'doing' AND NOT EXISTS (SELECT FROM procrastinate_workers w"
    " WHERE w.id = j.worker_id"
    " AND w.last_heartbeat >= now() - make_interval(secs => :stalled_after)))"
)

_JOB_COLUMNS = """
    j.id, j.queue_name AS queue, j.task_name AS task, j.status::text AS status, j.attempts,
    j.scheduled_at,
    (SELECT min(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS queued_at,
    (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS updated_at,
    j.lock, j.queueing_lock, j.worker_id
"""


def jobs(
    connection: sa.Connection,
    *,
    queue: str | None = None,
    task: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[JobRow]:
    """Jobs newest first, filtered; `before` (an id) pages on from the last one seen."""
    where: list[str] = []
    parameters: dict[str, Any] = {"limit": limit}
    if queue is not None:
        where.append("j.queue_name = :queue")
        parameters["queue"] = queue
    if task is not None:
        where.append("j.task_name = :task")
        parameters["task"] = task
    if status is not None:
        where.append("j.status = CAST(:status AS procrastinate_job_status)")
        parameters["status"] = status
    if before is not None:
        where.append("j.id < :before")
        parameters["before"] = before
    # Jobs are numbered in the order they were queued: a time bound is an id bound.
    if since is not None:
        where.append(
            "j.id >= coalesce((SELECT min(job_id) FROM procrastinate_events"
            " WHERE at >= :since AND type = 'deferred'), 9223372036854775807)"
        )
        parameters["since"] = since
    if until is not None:
        where.append(
            "j.id <= coalesce((SELECT max(job_id) FROM procrastinate_events"
            " WHERE at < :until AND type = 'deferred'), 0)"
        )
        parameters["until"] = until
    # Constant fragments; every value is a bound parameter.
    statement = sa.text(
        f"SELECT {_JOB_COLUMNS} FROM procrastinate_jobs j"  # noqa: S608
        f" {'WHERE ' + ' AND '.join(where) if where else ''}"
        " ORDER BY j.id DESC LIMIT :limit"
    )
    return [JobRow(**row._mapping) for row in connection.execute(statement, parameters)]


@dataclass(frozen=True)
class Event:
    type: str
    at: dt.datetime


@dataclass(frozen=True)
class Failure:
    attempt: int
    worker_id: int | None
    exception: str
    message: str
    traceback: str
    failed_at: dt.datetime


@dataclass(frozen=True)
class JobDetail:
    job: JobRow
    args: dict[str, Any]
    events: list[Event]
    failures: list[Failure]
    stalled: bool  # running on a worker that stopped answering


def job(connection: sa.Connection, job_id: int, *, stalled_after: float) -> JobDetail | None:
    row = connection.execute(
        sa.text(
            f"SELECT {_JOB_COLUMNS}, j.args, {STALLED} AS stalled"  # noqa: S608 (constants)
            " FROM procrastinate_jobs j WHERE j.id = :id"
        ),
        {"id": job_id, "stalled_after": stalled_after},
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    args, stalled = values.pop("args"), values.pop("stalled")
    events = [
        Event(type_, at)
        for type_, at in connection.execute(
            sa.text(
                "SELECT type::text, at FROM procrastinate_events WHERE job_id = :id ORDER BY id"
            ),
            {"id": job_id},
        )
    ]
    failures = [
        Failure(**r._mapping)
        for r in connection.execute(
            sa.text(
                "SELECT attempt, worker_id, exception, message, traceback, failed_at"
                " FROM job_failures WHERE job_id = :id ORDER BY id"
            ),
            {"id": job_id},
        )
    ]
    return JobDetail(JobRow(**values), args, events, failures, bool(stalled))


@dataclass(frozen=True)
class Minute:
    minute: dt.datetime
    succeeded: int
    failed: int


def jobs_per_minute(connection: sa.Connection, *, minutes: int = 60) -> list[Minute]:
    """Jobs finished in each of the last `minutes` minutes (oldest first; zeros included)."""
    rows = connection.execute(
        sa.text(
            """
            SELECT m.minute,
                   coalesce(sum(c.count) FILTER (WHERE c.outcome = 'succeeded'), 0),
                   coalesce(sum(c.count) FILTER (WHERE c.outcome IN ('failed', 'aborted')), 0)
              FROM generate_series(date_trunc('minute', now()) - make_interval(mins => :n - 1),
                                   date_trunc('minute', now()), interval '1 minute') AS m(minute)
              LEFT JOIN job_counts c ON c.minute = m.minute
             GROUP BY m.minute ORDER BY m.minute
            """
        ),
        {"n": minutes},
    )
    return [Minute(minute, int(ok), int(bad)) for minute, ok, bad in rows]


# --- workers and schedule ---------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerView:
    id: int
    last_heartbeat: dt.datetime
    running: int
    alive: bool


def workers(connection: sa.Connection, *, stalled_after: float) -> list[WorkerView]:
    rows = connection.execute(
        sa.text(
            "SELECT w.id, w.last_heartbeat,"
            " (SELECT count(*) FROM procrastinate_jobs j"
            "   WHERE j.worker_id = w.id AND j.status = 'doing') AS running,"
            " w.last_heartbeat >= now() - make_interval(secs => :stalled_after) AS alive"
            " FROM procrastinate_workers w ORDER BY w.id"
        ),
        {"stalled_after": stalled_after},
    )
    return [WorkerView(**row._mapping) for row in rows]


@dataclass(frozen=True)
class ScheduleEntry:
    task: str
    cron: str
    command: str
    last_tick: dt.datetime | None
    next_tick: dt.datetime
    last_success: dt.datetime | None


def schedule(connection: sa.Connection, *, now: dt.datetime) -> list[ScheduleEntry]:
    rows = connection.execute(
        sa.text(
            """
            SELECT t.task,
                   (SELECT to_timestamp(max(d.defer_timestamp)) FROM procrastinate_periodic_defers d
                     WHERE d.task_name = t.task),
                   (SELECT e.at FROM procrastinate_jobs j JOIN procrastinate_events e
                       ON e.job_id = j.id AND e.type = 'succeeded'
                     WHERE j.task_name = t.task AND j.status = 'succeeded'
                     ORDER BY j.id DESC, e.id DESC LIMIT 1)
              FROM unnest(CAST(:tasks AS text[])) AS t(task)
            """
        ),
        {"tasks": [p.name for p in PERIODIC]},
    )
    found = {task: (tick, success) for task, tick, success in rows}
    return [
        ScheduleEntry(
            task=p.name,
            cron=p.cron,
            command=p.command,
            last_tick=found[p.name][0],
            next_tick=croniter(p.cron, now).get_next(dt.datetime),
            last_success=found[p.name][1],
        )
        for p in PERIODIC
    ]


# --- the planner's own work -------------------------------------------------------------------


@dataclass(frozen=True)
class RolloverView:
    lag_seconds: float  # age of the oldest user-day due and not closed
    users_due: int  # users with a day to close now
    users_backing_off: int  # users whose last rollover failed, waiting to be retried
    last_error: str | None


def rollover(connection: sa.Connection) -> RolloverView:
    row = connection.execute(
        sa.text(
            """
            SELECT extract(epoch FROM now() - (SELECT min(rollover_due_at) FROM users)),
                   (SELECT count(*) FROM users WHERE rollover_due_at <= now()),
                   (SELECT count(*) FROM users WHERE rollover_retry_at > now()),
                   (SELECT rollover_error FROM users WHERE rollover_retry_at > now()
                     ORDER BY rollover_retry_at DESC LIMIT 1)
            """
        )
    ).one()
    lag, due, backing_off, error = row
    return RolloverView(max(0.0, float(lag or 0.0)), int(due), int(backing_off), error)


@dataclass(frozen=True)
class DeliveriesView:
    outbox: int  # notifications raised, not drained into deliveries yet
    due: int  # deliveries to send now
    waiting: int  # deliveries waiting for a retry (or, in quiet hours, held)
    next_at: dt.datetime | None  # when the next waiting one is due


def deliveries(connection: sa.Connection) -> DeliveriesView:
    row = connection.execute(
        sa.text(
            """
            SELECT (SELECT count(*) FROM notifications WHERE drained_at IS NULL),
                   count(*) FILTER (WHERE next_attempt_at <= now()),
                   count(*) FILTER (WHERE next_attempt_at > now()),
                   min(next_attempt_at) FILTER (WHERE next_attempt_at > now())
              FROM push_deliveries WHERE status = 'pending'
            """
        )
    ).one()
    outbox, due, waiting, next_at = row
    return DeliveriesView(int(outbox), int(due), int(waiting), next_at)


def exports(connection: sa.Connection) -> dict[str, int]:
    """Export jobs by status (expired ones are not counted: they pile up forever)."""
    counts = dict.fromkeys(("pending", "processing", "complete", "failed"), 0)
    rows = connection.execute(  # each half off its index: the active, the finished
        sa.text(
            "SELECT status, count(*) FROM export_jobs"
            " WHERE status IN ('pending', 'processing') GROUP BY 1"
            " UNION ALL SELECT status, count(*) FROM export_jobs"
            " WHERE status IN ('complete', 'failed') GROUP BY 1"
        )
    )
    counts.update({status: int(count) for status, count in rows})
    return counts


@dataclass(frozen=True)
class ExportRow:
    id: str
    user_id: str
    format: str
    status: str
    created_at: dt.datetime
    completed_at: dt.datetime | None
    size_bytes: int | None
    error: str | None


def recent_exports(connection: sa.Connection, *, limit: int = 50) -> list[ExportRow]:
    rows = connection.execute(
        sa.text(
            "SELECT id::text, user_id::text, format, status, created_at, completed_at,"
            " size_bytes, error FROM export_jobs ORDER BY created_at DESC, id LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [ExportRow(**row._mapping) for row in rows]


@dataclass(frozen=True)
class WaitingDelivery:
    notification_id: int
    user_id: str
    host: str
    attempts: int
    next_attempt_at: dt.datetime
    last_status: int | None
    last_error: str | None
    source: str


def waiting_deliveries(connection: sa.Connection, *, limit: int = 50) -> list[WaitingDelivery]:
    """The pending deliveries, the soonest due first."""
    rows = connection.execute(
        sa.text(
            """
            SELECT d.notification_id, n.user_id::text,
                   coalesce(substring(s.endpoint from '^[a-z]+://([^/]+)'), '?') AS host,
                   d.attempts, d.next_attempt_at, d.last_status, d.last_error, n.source
              FROM push_deliveries d
              JOIN notifications n ON n.id = d.notification_id
              JOIN push_subscriptions s ON s.id = d.subscription_id
             WHERE d.status = 'pending'
             ORDER BY d.next_attempt_at LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    return [WaitingDelivery(**row._mapping) for row in rows]


# --- everything at once -----------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    now: dt.datetime
    revision: str | None
    head: str | None
    queues: list[QueueView]
    workers: list[WorkerView]
    schedule: list[ScheduleEntry]
    rollover: RolloverView
    exports: dict[str, int]
    deliveries: DeliveriesView
    last_hour: dict[str, int] = field(default_factory=dict)  # user-days closed, reminders, pushes

    def as_json(self) -> dict[str, Any]:
        json: dict[str, Any] = _jsonable(asdict(self))
        return json


def status(connection: sa.Connection, *, stalled_after: float) -> Status:
    """One screen for an operator: everything above, as of one instant of the database."""
    now = database_now(connection)
    return Status(
        now=now,
        revision=current_revision(connection),
        head=head_revision(),
        queues=queues(connection),
        workers=workers(connection, stalled_after=stalled_after),
        schedule=schedule(connection, now=now),
        rollover=rollover(connection),
        exports=exports(connection),
        deliveries=deliveries(connection),
        last_hour=activity.last_hour(connection),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def as_json(value: Any) -> Any:
    """A view (or a list of them) as JSON values."""
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return _jsonable(asdict(value))


TASK_NAMES = tuple(t.name for t in TASKS) + tuple(p.name for p in PERIODIC)
