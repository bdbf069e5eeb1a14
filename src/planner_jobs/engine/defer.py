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
