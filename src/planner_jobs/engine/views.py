"""The job engine seen from outside: its queues, jobs, their timelines and failures, workers
and periodic runs, read from procrastinate's tables (and our bookkeeping beside them:
`job_failures`, `job_counts`). Read-only; each view is a few index lookups (migration 0007 adds
the indexes), so a million finished jobs cost nothing to look past. The operators' room
(`inspection`) composes these with the planner's own state.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from planner_jobs.engine.queues import PAUSED, QUEUES, STATUSES

UNFINISHED = ("todo", "doing", "failed", "cancelled", "aborted")  # counted exactly, row by row


# --- queues -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueView:
    name: str
    counts: dict[str, int]  # jobs kept, by status (succeeded: finished in the last hour)
    oldest_ready_seconds: float | None  # how long the oldest job ready to run has waited
    paused: bool = False  # by an operator: workers take none of its jobs


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
    paused = set(connection.execute(sa.text(PAUSED)).scalars())
    return [
        QueueView(
            name,
            counts[name],
            None if oldest.get(name) is None else float(oldest[name]),
            paused=name in paused,
        )
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
    started_at: dt.datetime | None  # its last run's start
    lock: str | None
    queueing_lock: str | None
    worker_id: int | None

    def ran_for(self, now: dt.datetime) -> float | None:
        """Seconds its last run took (so far, while it runs); None if it has not run."""
        if self.started_at is None or self.status == "todo":
            return None
        end = now if self.status == "doing" else self.updated_at
        return None if end is None else max(0.0, (end - self.started_at).total_seconds())


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
    (SELECT max(e.at) FROM procrastinate_events e
      WHERE e.job_id = j.id AND e.type = 'started') AS started_at,
    j.lock, j.queueing_lock, j.worker_id
"""


# The jobs about a user: a notification's send job (`userId`), an export's build job
# (`export_id`), and the delivery jobs of the user's notifications; each part is an index lookup
# (migration 0012), so the filter costs the same at a million kept jobs.
ABOUT_USER = """j.id IN (
    SELECT about.id FROM procrastinate_jobs about
     WHERE coalesce(about.args->>'userId', about.args->>'export_id') = ANY(ARRAY(
           SELECT CAST(:user AS text)
            UNION ALL SELECT e.id::text FROM export_jobs e WHERE e.user_id = :user))
    UNION ALL
    SELECT about.id FROM procrastinate_jobs about
     WHERE about.task_name = 'notifications.deliver'
       AND planner_job_notification_ids(about.args) && ARRAY(
           SELECT n.id FROM notifications n WHERE n.user_id = :user))"""


@dataclass(frozen=True)
class JobFilter:
    """Which jobs: the filters of `jobs list`, the Jobs page and the bulk actions."""

    queue: str | None = None
    task: str | None = None
    status: str | None = None
    user: uuid.UUID | None = None
    since: dt.datetime | None = None  # queued at or after
    until: dt.datetime | None = None  # queued before

    def where(self) -> tuple[list[str], dict[str, Any]]:
        """SQL conditions on job `j` (constant fragments) and their bound parameters."""
        where: list[str] = []
        parameters: dict[str, Any] = {}
        if self.queue is not None:
            where.append("j.queue_name = :queue")
            parameters["queue"] = self.queue
        if self.task is not None:
            where.append("j.task_name = :task")
            parameters["task"] = self.task
        if self.status is not None:
            where.append("j.status = CAST(:status AS procrastinate_job_status)")
            parameters["status"] = self.status
        if self.user is not None:
            where.append(ABOUT_USER)
            parameters["user"] = self.user
        # Jobs are numbered in the order they were queued: a time bound is an id bound.
        if self.since is not None:
            where.append(
                "j.id >= coalesce((SELECT min(job_id) FROM procrastinate_events"
                " WHERE at >= :since AND type = 'deferred'), 9223372036854775807)"
            )
            parameters["since"] = self.since
        if self.until is not None:
            where.append(
                "j.id <= coalesce((SELECT max(job_id) FROM procrastinate_events"
                " WHERE at < :until AND type = 'deferred'), 0)"
            )
            parameters["until"] = self.until
        return where, parameters


def jobs(
    connection: sa.Connection,
    *,
    before: int | None = None,
    limit: int = 50,
    **selection: Any,
) -> list[JobRow]:
    """Jobs newest first, filtered (the fields of `JobFilter`); `before` (an id) pages on from
    the last one seen."""
    where, parameters = JobFilter(**selection).where()
    parameters["limit"] = limit
    if before is not None:
        where.append("j.id < :before")
        parameters["before"] = before
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
                # In the order they happen: a job queued to run later gets its "scheduled"
                # event (at the time it is due) before its "deferred" one.
                "SELECT type::text, at FROM procrastinate_events WHERE job_id = :id ORDER BY at, id"
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
    host: str | None = None  # where it runs (None: it has not said yet)
    pid: int | None = None
    queues: list[str] | None = None
    started_at: dt.datetime | None = None
    running_jobs: list[int] | None = None  # the ids of the jobs it runs


def workers(connection: sa.Connection, *, stalled_after: float) -> list[WorkerView]:
    rows = connection.execute(
        sa.text(
            "SELECT w.id, w.last_heartbeat,"
            " (SELECT count(*) FROM procrastinate_jobs j"
            "   WHERE j.worker_id = w.id AND j.status = 'doing') AS running,"
            " w.last_heartbeat >= now() - make_interval(secs => :stalled_after) AS alive,"
            " p.host, p.pid, p.queues, p.started_at,"
            " ARRAY(SELECT j.id FROM procrastinate_jobs j"
            "   WHERE j.worker_id = w.id AND j.status = 'doing' ORDER BY j.id) AS running_jobs"
            " FROM procrastinate_workers w LEFT JOIN worker_processes p ON p.worker_id = w.id"
            " ORDER BY w.id"
        ),
        {"stalled_after": stalled_after},
    )
    return [WorkerView(**row._mapping) for row in rows]


@dataclass(frozen=True)
class PeriodicRuns:
    last_tick: dt.datetime | None  # the last tick deferred, by whichever worker
    last_success: dt.datetime | None  # when a run of it last succeeded


def periodic_runs(connection: sa.Connection, tasks: list[str]) -> dict[str, PeriodicRuns]:
    """The last tick and the last success of each periodic task named."""
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
        {"tasks": tasks},
    )
    return {task: PeriodicRuns(tick, success) for task, tick, success in rows}
