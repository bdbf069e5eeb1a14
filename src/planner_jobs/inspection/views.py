"""The read-only views of the inspection room, each a few index lookups on one connection."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from croniter import croniter

from planner_jobs.catalogue import PERIODIC
from planner_jobs.db import job_counts
from planner_jobs.db import notifications as notifications_db
from planner_jobs.db import rollover as rollover_db
from planner_jobs.db.engine import database_now as database_now  # the views' clock
from planner_jobs.db.migrate import current_revision, head_revision

# The job engine's own views, shown beside the planner's (and to the CLI and the dashboard
# through this module, the operators' one).
from planner_jobs.engine.views import (
    STALLED,
    Event,
    Failure,
    JobDetail,
    JobRow,
    Minute,
    QueueView,
    WorkerView,
    job,
    jobs,
    jobs_per_minute,
    periodic_runs,
    queues,
    workers,
)


@dataclass(frozen=True)
class ScheduleEntry:
    task: str
    cron: str
    command: str
    last_tick: dt.datetime | None
    next_tick: dt.datetime
    last_success: dt.datetime | None


def schedule(connection: sa.Connection, *, now: dt.datetime) -> list[ScheduleEntry]:
    """Each periodic task of the catalogue: its cron and command, its last tick and success
    (the job engine's), its next tick."""
    runs = periodic_runs(connection, [p.name for p in PERIODIC])
    return [
        ScheduleEntry(
            task=p.name,
            cron=p.cron,
            command=p.command,
            last_tick=runs[p.name].last_tick,
            next_tick=croniter(p.cron, now).get_next(dt.datetime),
            last_success=runs[p.name].last_success,
        )
        for p in PERIODIC
    ]


# --- the planner's own work -------------------------------------------------------------------


@dataclass(frozen=True)
class RolloverView:
    lag_seconds: float  # age of the oldest user-day due and not closed
    users_due: int  # users with rollover work now (a day to close, or not planned yet)
    users_backing_off: int  # users whose last rollover failed, waiting to be retried
    last_error: str | None


def rollover(connection: sa.Connection) -> RolloverView:
    """The rollover's state, in the rollover's own terms (`db.rollover`): what the sweep would
    claim now, the lag its metric reports, the users backing off."""
    now = database_now(connection)
    failing = rollover_db.backing_off(connection, now=now)
    return RolloverView(
        lag_seconds=rollover_db.lag_seconds(connection, now=now),
        users_due=rollover_db.count_users_with_work(connection, now=now),
        users_backing_off=failing.users,
        last_error=failing.last_error,
    )


@dataclass(frozen=True)
class DeliveriesView:
    outbox: int  # notifications raised, not drained into deliveries yet
    due: int  # deliveries to send now
    waiting: int  # deliveries waiting for a retry (or, in quiet hours, held)
    next_at: dt.datetime | None  # when the next waiting one is due


def deliveries(connection: sa.Connection) -> DeliveriesView:
    row = connection.execute(
        sa.text(
            f"""
            SELECT (SELECT count(*) FROM notifications WHERE {notifications_db.WAITING}),
                   count(*) FILTER (WHERE next_attempt_at <= now()),
                   count(*) FILTER (WHERE next_attempt_at > now()),
                   min(next_attempt_at) FILTER (WHERE next_attempt_at > now())
              FROM push_deliveries WHERE status = 'pending'
            """  # noqa: S608 (a constant fragment)
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
class SchedulesView:
    """The users' export schedules, and those due whose export waits for the user's active one."""

    schedules: int
    due: int


def export_schedules(connection: sa.Connection) -> SchedulesView:
    schedules, due = connection.execute(
        sa.text("SELECT count(*), count(due_date) FROM export_schedules")
    ).one()
    return SchedulesView(int(schedules), int(due))


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
    source: str = "request"  # or "schedule"
    # Its e-mail (PLANNER_SMTP_URL), if it has one: pending, sent or failed, and the server's
    # last answer (or what went wrong).
    email_status: str | None = None
    email_attempts: int = 0
    email_next_attempt_at: dt.datetime | None = None
    email_reply: str | None = None


def recent_exports(connection: sa.Connection, *, limit: int = 50) -> list[ExportRow]:
    rows = connection.execute(
        sa.text(
            """
            SELECT j.id::text, j.user_id::text, j.format, j.status, j.created_at,
                   j.completed_at, j.size_bytes, j.error, j.source, e.status AS email_status,
                   coalesce(e.attempts, 0) AS email_attempts,
                   e.next_attempt_at AS email_next_attempt_at, e.reply AS email_reply
              FROM (SELECT * FROM export_jobs ORDER BY created_at DESC, id LIMIT :limit) AS j
              LEFT JOIN export_emails e ON e.export_id = j.id
             ORDER BY j.created_at DESC, j.id
            """
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
    export_schedules: SchedulesView
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
        export_schedules=export_schedules(connection),
        last_hour=job_counts.last_hour(connection),
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


__all__ = [
    "STALLED",
    "Event",
    "Failure",
    "JobDetail",
    "JobRow",
    "Minute",
    "QueueView",
    "Status",
    "WorkerView",
    "as_json",
    "database_now",
    "deliveries",
    "export_schedules",
    "exports",
    "job",
    "jobs",
    "jobs_per_minute",
    "queues",
    "recent_exports",
    "rollover",
    "schedule",
    "status",
    "waiting_deliveries",
    "workers",
]
