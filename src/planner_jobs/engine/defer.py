"""Queueing a job inside the caller's database transaction.

A row and the job that processes it commit together or not at all: the job is inserted on the
same connection (procrastinate's own defer function, through its sync connector given our
connection), so there is no window in which one exists without the other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import procrastinate
import sqlalchemy as sa
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.manager import JobManager
from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

JobApp = procrastinate.App  # what use cases hold to defer jobs, named without procrastinate


def defer_in_transaction(
    connection: sa.Connection,
    job_app: JobApp,
    task_name: str,
    *,
    queueing_lock: str | None = None,
    schedule_at: dt.datetime | None = None,
    **task_kwargs: Any,
) -> int | None:
    """Queue `task_name(**task_kwargs)` in `connection`'s transaction; return the job id.

    Returns None when `queueing_lock` is set and a job with that lock is already waiting: the
    caller's transaction is unaffected (the attempt runs in a savepoint).
    """
    options: dict[str, Any] = {"task_kwargs": task_kwargs, "queueing_lock": queueing_lock}
    if schedule_at is not None:
        options["schedule_at"] = schedule_at
    job = job_app.tasks[task_name].configure(**options).job
    # A connector that is never opened: it only runs the defer query on our connection.
    manager = JobManager(SyncPsycopgConnector())
    try:
        with connection.begin_nested():
            deferred = manager.defer_job(job, connection=connection.connection.driver_connection)
    except AlreadyEnqueued:
        return None
    return deferred.id


_HASTEN = sa.text(
    "UPDATE procrastinate_jobs SET scheduled_at = now()"
    " WHERE queueing_lock = :lock AND status = 'todo' AND scheduled_at > now()"
)


def defer_or_hasten(
    connection: sa.Connection, job_app: JobApp, task_name: str, *, queueing_lock: str
) -> None:
    """Queue `task_name()` in `connection`'s transaction, or, when a job with `queueing_lock`
    waits already (a retry scheduled for later, say), have that one run now: a task that does
    all the work due when it runs needs no second job."""
    if defer_in_transaction(connection, job_app, task_name, queueing_lock=queueing_lock) is None:
        connection.execute(_HASTEN, {"lock": queueing_lock})


_DEFER_TICK = sa.text(
    """
    SELECT procrastinate_defer_jobs_v1(ARRAY[
        ROW(CAST(:queue AS varchar), CAST(:task AS varchar), 0, NULL, CAST(:task AS text),
            jsonb_build_object('timestamp', extract(epoch FROM now())::bigint), NULL
        )::procrastinate_job_to_defer_v1])
    """
)
_WAITING_TICK = sa.text(
    "SELECT id FROM procrastinate_jobs WHERE queueing_lock = :task AND status = 'todo'"
)


def defer_periodic_now(connection: sa.Connection, *, task: str, queue: str) -> tuple[int, bool]:
    """Queue a tick of the periodic `task` to run now, besides its schedule: the job's id, and
    whether it is new (False: a tick of it was waiting already, and runs first)."""
    try:
        with connection.begin_nested():
            (job_id,) = connection.execute(_DEFER_TICK, {"task": task, "queue": queue}).scalar_one()
    except sa.exc.IntegrityError:  # its queueing lock: one tick waits at a time
        return connection.execute(_WAITING_TICK, {"task": task}).scalar_one(), False
    return job_id, True
