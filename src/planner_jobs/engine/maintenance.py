"""Housekeeping of the job engine itself: handing back the jobs of dead workers, pruning old jobs.

These run procrastinate's own queries (the ones its `JobManager` runs) on our connection, so the
periodic task and `planner-jobs cron` do the same thing, the latter without opening a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from procrastinate import sql
from psycopg.rows import dict_row
from sqlalchemy.engine import Engine

from planner_jobs import logs

events = logs.events(__name__)

FINISHED_JOB_RETENTION_HOURS = 7 * 24


@dataclass(frozen=True)
class StalledSummary:
    retried: int
    failed: int  # a job with the same queueing lock was waiting already: it does the work

    def line(self) -> str:
        text = f"handed back {self.retried} stalled jobs"
        if self.failed:
            text += f" ({self.failed} marked failed: a job with their queueing lock was waiting)"
        return text


def retry_stalled_jobs(engine: Engine, *, stalled_after: float) -> StalledSummary:
    """Put the running jobs of workers silent for `stalled_after` seconds back in their queue
    (procrastinate does not do it alone), to run again at once."""
    retried = failed = 0
    with engine.begin() as connection:
        stalled = _query(
            connection,
            "select_stalled_jobs_by_heartbeat",
            queue=None,
            task_name=None,
            seconds_since_heartbeat=stalled_after,
        )
        for job in stalled:
            try:
                with connection.begin_nested():
                    _query(
                        connection,
                        "retry_job",
                        job_id=job["id"],
                        retry_at=None,
                        new_priority=None,
                        new_queue_name=None,
                        new_lock=None,
                    )
                events.warning(
                    "stalled job handed back: its worker stopped answering",
                    job_id=job["id"],
                    task=job["task_name"],
                )
                retried += 1
            except psycopg.errors.UniqueViolation:
                # Back in the queue it would hold the queueing lock of a job already waiting
                # (the next tick of a periodic task): that one will do the work.
                _query(
                    connection, "finish_job", job_id=job["id"], status="failed", delete_job=False
                )
                events.warning(
                    "stalled job marked failed: a job with its queueing lock waits",
                    job_id=job["id"],
                    task=job["task_name"],
                    queueing_lock=job["queueing_lock"],
                )
                failed += 1
    return StalledSummary(retried=retried, failed=failed)


@dataclass(frozen=True)
class JobsPruned:
    hours: int
    failures: int

    def line(self) -> str:
        return (
            f"deleted the jobs finished more than {self.hours} hours ago"
            f" and {self.failures} recorded failures of theirs"
        )


def prune_finished_jobs(engine: Engine, *, hours: int = FINISHED_JOB_RETENTION_HOURS) -> JobsPruned:
    """Delete finished job rows older than `hours`, keeping the queue tables small, with the
    failures recorded for them and the per-minute counts of that age."""
    with engine.begin() as connection:
        _query(
            connection,
            "delete_old_jobs",
            nb_hours=hours,
            queue=None,
            statuses=["succeeded", "failed", "cancelled", "aborted"],
        )
        failures = connection.execute(
            sa.text(
                "DELETE FROM job_failures f WHERE NOT EXISTS"
                " (SELECT FROM procrastinate_jobs j WHERE j.id = f.job_id)"
            )
        ).rowcount
        connection.execute(
            sa.text("DELETE FROM job_counts WHERE minute < now() - make_interval(hours => :h)"),
            {"h": hours},
        )
    return JobsPruned(hours=hours, failures=failures)


def _query(connection: sa.Connection, name: str, **parameters: Any) -> list[dict[str, Any]]:
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(row_factory=dict_row) as cursor:
        cursor.execute(sql.queries[name], parameters)
        return cursor.fetchall() if cursor.description is not None else []
