"""Export jobs: the rows that follow each export from its request to its expiry."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa

from planner_jobs.db.engine import database_now
from planner_jobs.db.models import ExportJob

FINAL_STATUSES = ("complete", "failed", "expired")  # nothing follows them
ACTIVE_STATUSES = ("pending", "processing")  # an export on its way (one per user at a time)


@dataclass(frozen=True)
class ExportJobRow:
    id: uuid.UUID
    user_id: uuid.UUID
    format: str
    status: str
    created_at: dt.datetime
    completed_at: dt.datetime | None
    expires_at: dt.datetime | None
    storage_key: str | None
    error: str | None
    source: str = "request"  # or "schedule": made by the user's export schedule


_JOB_COLUMNS = (
    ExportJob.id,
    ExportJob.user_id,
    ExportJob.format,
    ExportJob.status,
    ExportJob.created_at,
    ExportJob.completed_at,
    ExportJob.expires_at,
    ExportJob.storage_key,
    ExportJob.error,
    ExportJob.source,
)


def _job(row: Any) -> ExportJobRow:
    return ExportJobRow(**row._mapping)


def request(
    connection: sa.Connection, user_id: uuid.UUID, export_format: str
) -> tuple[ExportJobRow, bool]:
    """`planner_request_export()` (migration 0006: the rules of every way in): the user's
    export job in `export_format`, and whether this call created it. The database's refusals
    are raised as they come (SQLSTATE 22023, PJ409, PJ429)."""
    requested = sa.func.planner_request_export(user_id, export_format, type_=sa.Uuid())
    export_id: uuid.UUID = connection.execute(sa.select(requested)).scalar_one()
    job = get_job(connection, export_id)
    assert job is not None  # returned by this transaction
    created = job.created_at == database_now(connection)
    return job, created


def active_job(connection: sa.Connection, user_id: uuid.UUID) -> ExportJobRow | None:
    """The user's export on its way, if any."""
    row = connection.execute(
        sa.select(*_JOB_COLUMNS).where(
            ExportJob.user_id == user_id, ExportJob.status.in_(ACTIVE_STATUSES)
        )
    ).one_or_none()
    return None if row is None else _job(row)


def get_job(
    connection: sa.Connection, export_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> ExportJobRow | None:
    query = sa.select(*_JOB_COLUMNS).where(ExportJob.id == export_id)
    if user_id is not None:
        query = query.where(ExportJob.user_id == user_id)
    row = connection.execute(query).one_or_none()
    return None if row is None else _job(row)


STATUS_CHANNEL = "planner_export_status"  # NOTIFY'd with the export's row (migration 0015)


def announced_job(payload: str) -> ExportJobRow:
    """The export as a notification of `STATUS_CHANNEL` carries it."""
    row = json.loads(payload)
    for instant in ("created_at", "completed_at", "expires_at"):
        if row[instant] is not None:
            row[instant] = dt.datetime.fromisoformat(row[instant])
    row["id"], row["user_id"] = uuid.UUID(row["id"]), uuid.UUID(row["user_id"])
    return ExportJobRow(**row)


_JOBS_BY_ID = (
    f"SELECT {', '.join(column.name for column in _JOB_COLUMNS)}"  # noqa: S608 (our columns)
    " FROM export_jobs WHERE id = ANY(%s)"
)


async def jobs_by_id(
    connection: psycopg.AsyncConnection[Any], ids: list[uuid.UUID]
) -> list[ExportJobRow]:
    """The exports `ids` (those that exist), on a connection of psycopg's own (a listener's)."""
    cursor = await connection.execute(_JOBS_BY_ID, (ids,))
    return [ExportJobRow(*row) for row in await cursor.fetchall()]


def list_jobs(
    connection: sa.Connection, user_id: uuid.UUID, *, limit: int = 100
) -> list[ExportJobRow]:
    rows = connection.execute(
        sa.select(*_JOB_COLUMNS)
        .where(ExportJob.user_id == user_id)
        .order_by(ExportJob.created_at.desc(), ExportJob.id.desc())
        .limit(limit)
    ).all()
    return [_job(row) for row in rows]


def claim_job(connection: sa.Connection, export_id: uuid.UUID) -> ExportJobRow | None:
    """pending -> processing (or processing again, when a dead worker's attempt is retried)."""
    row = connection.execute(
        sa.update(ExportJob)
        .where(ExportJob.id == export_id, ExportJob.status.in_(ACTIVE_STATUSES))
        .values(status="processing", error=None)
        .returning(*_JOB_COLUMNS)
    ).one_or_none()
    return None if row is None else _job(row)


def record_storage_key(connection: sa.Connection, export_id: uuid.UUID, key: str) -> None:
    """Where the export's file will be stored, written before it is: whatever attempt dies
    where, the object can be found and deleted."""
    connection.execute(
        sa.update(ExportJob).where(ExportJob.id == export_id).values(storage_key=key)
    )


def complete_job(
    connection: sa.Connection,
    export_id: uuid.UUID,
    *,
    storage_key: str,
    size_bytes: int,
    download_url: str,
    completed_at: dt.datetime,
    expires_at: dt.datetime | None,
) -> bool:
    """processing -> complete; a scheduled export the user's schedule waited on starts."""
    user_id = connection.scalar(
        sa.update(ExportJob)
        .where(ExportJob.id == export_id, ExportJob.status == "processing")
        .values(
            status="complete",
            storage_key=storage_key,
            size_bytes=size_bytes,
            download_url=download_url,
            completed_at=completed_at,
            expires_at=expires_at,
            error=None,
        )
        .returning(ExportJob.user_id)
    )
    if user_id is None:
        return False
    start_scheduled(connection, [user_id])
    return True


def fail_job(connection: sa.Connection, export_id: uuid.UUID, *, error: str) -> ExportJobRow | None:
    """Mark a job that has not finished as failed; return it (None if it had finished). A
    scheduled export the user's schedule waited on starts."""
    row = connection.execute(
        sa.update(ExportJob)
        .where(ExportJob.id == export_id, ExportJob.status.in_(ACTIVE_STATUSES))
        .values(status="failed", error=error)
        .returning(*_JOB_COLUMNS)
    ).one_or_none()
    if row is None:
        return None
    start_scheduled(connection, [row.user_id])
    return _job(row)


# --- scheduled exports ------------------------------------------------------------------------

# The closed dates that end a schedule's period: every date, a Sunday, a month's last date.
_MARK_DUE = sa.text(
    """
    WITH closed AS (
        SELECT * FROM unnest(CAST(:users AS uuid[]), CAST(:days AS date[])) AS c(user_id, day)
    ), due AS (
        SELECT s.user_id, max(c.day) AS day
          FROM closed c JOIN export_schedules s ON s.user_id = c.user_id
         WHERE CASE s.every WHEN 'day' THEN true
                            WHEN 'week' THEN extract(isodow FROM c.day) = 7
                            ELSE extract(day FROM c.day + 1) = 1 END
         GROUP BY s.user_id
    )
    UPDATE export_schedules s SET due_date = due.day
      FROM due WHERE s.user_id = due.user_id
    RETURNING s.user_id
    """
)

# A due schedule's export, unless the user has one on its way (it starts when that one ends);
# the unique index of active exports settles a race with a request.
_START = sa.text(
    """
    WITH started AS (
        INSERT INTO export_jobs (user_id, format, status, source, created_at)
        SELECT s.user_id, s.format, 'pending', 'schedule', now()
          FROM export_schedules s
         WHERE s.user_id = ANY(CAST(:users AS uuid[])) AND s.due_date IS NOT NULL
           AND NOT EXISTS (SELECT FROM export_jobs j
                            WHERE j.user_id = s.user_id AND j.status IN ('pending', 'processing'))
        ON CONFLICT DO NOTHING
        RETURNING user_id
    )
    UPDATE export_schedules s SET due_date = NULL
      FROM started WHERE s.user_id = started.user_id
    RETURNING s.user_id
    """
)


def mark_schedules_due(
    connection: sa.Connection, closed: Sequence[tuple[uuid.UUID, dt.date]]
) -> list[uuid.UUID]:
    """The rollover closed these (user, date) pairs: the schedules whose period one of them
    ends are due for an export holding it. Returns their users."""
    if not closed:
        return []
    return list(
        connection.scalars(
            _MARK_DUE, {"users": [u for u, _ in closed], "days": [d for _, d in closed]}
        )
    )


def start_scheduled(connection: sa.Connection, user_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Start the exports of the users' due schedules (those with no export on its way); the
    workers' intake queues their builds as it does requests'. Returns the users started."""
    if not user_ids:
        return []
    return list(connection.scalars(_START, {"users": list(user_ids)}))


def forget_storage_key(connection: sa.Connection, export_id: uuid.UUID) -> None:
    """The failed job's object is deleted: nothing to clean up any more."""
    connection.execute(
        sa.update(ExportJob)
        .where(ExportJob.id == export_id, ExportJob.status == "failed")
        .values(storage_key=None)
    )


# A user's complete scheduled exports past the newest `keep` of their schedule; once the schedule
# is gone, those completed before the retention cutoff (as a requested export's retention).
_SCHEDULED_PAST_KEEPING = sa.text(
    """
    SELECT id FROM (
        SELECT j.id, j.completed_at, s.keep,
               row_number() OVER (PARTITION BY j.user_id
                                  ORDER BY j.created_at DESC, j.id DESC) AS newest
          FROM export_jobs j LEFT JOIN export_schedules s ON s.user_id = j.user_id
         WHERE j.source = 'schedule' AND j.status = 'complete'
    ) ranked
     WHERE newest > keep OR (keep IS NULL AND completed_at < :cutoff)
    """
)


def expiring_jobs(
    connection: sa.Connection, *, now: dt.datetime, retention: dt.timedelta, limit: int
) -> list[ExportJobRow]:
    """Jobs whose stored file is to be deleted, locked for the retention sweep: complete ones
    past their retention, complete scheduled ones past the newest their schedule keeps, and
    failed ones whose file (of an attempt that uploaded, then died or failed) is still
    recorded."""
    rows = connection.execute(
        sa.select(*_JOB_COLUMNS)
        .where(
            sa.or_(
                sa.and_(ExportJob.status == "complete", ExportJob.expires_at < now),
                sa.and_(ExportJob.status == "failed", ExportJob.storage_key.is_not(None)),
                ExportJob.id.in_(
                    _SCHEDULED_PAST_KEEPING.bindparams(cutoff=now - retention).columns(id=sa.Uuid())
                ),
            )
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [_job(row) for row in rows]


def mark_expired(connection: sa.Connection, export_id: uuid.UUID) -> None:
    connection.execute(
        sa.update(ExportJob)
        .where(ExportJob.id == export_id)
        .values(status="expired", download_url=None)
    )


# The export requests that wait for their build job (every question about them asks it in
# these words, which the partial index `ix_export_jobs_to_build` serves).
TO_BUILD = "status = 'pending' AND build_queued_at IS NULL"
ANY_TO_BUILD = f"EXISTS (SELECT FROM export_jobs WHERE {TO_BUILD})"

_TAKE_IN = sa.text(
    f"""
    WITH taken AS (
        SELECT id FROM export_jobs WHERE {TO_BUILD}
         ORDER BY created_at LIMIT :limit
         FOR UPDATE SKIP LOCKED
    )
    UPDATE export_jobs SET build_queued_at = now()
      FROM taken WHERE export_jobs.id = taken.id
    RETURNING export_jobs.id
    """  # noqa: S608 (constant fragments)
)


def take_in_requests(connection: sa.Connection, *, limit: int) -> list[uuid.UUID]:
    """Up to `limit` export requests that have no build job yet (oldest first, others' locked
    ones skipped), marked as taken in: the caller queues their build jobs in this transaction."""
    return list(connection.scalars(_TAKE_IN, {"limit": limit}))
