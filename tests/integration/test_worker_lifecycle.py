"""Stopping, and dying: in-flight jobs finish, are handed back, or are retried after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import procrastinate
import sqlalchemy as sa

from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.engine.maintenance import retry_stalled_jobs
from planner_jobs.engine.queues import QUEUES
from planner_jobs.engine.worker import WorkerPlan
from planner_jobs.runtime import Runtime
from planner_jobs.service import serve


def register_test_tasks(app: procrastinate.App) -> list[str]:
    """Register the test tasks; the returned list records every run of `test.short`."""
    runs: list[str] = []

    @app.task(name="test.short", queue="maintenance")
    async def short() -> str:
        await asyncio.sleep(1)
        runs.append("short")
        return "finished"

    @app.task(
        name="test.endless", queue="maintenance", retry=procrastinate.RetryStrategy(max_attempts=3)
    )
    async def endless() -> None:
        await asyncio.sleep(3600)

    return runs


def statuses(runtime: Runtime) -> dict[str, tuple[str, int]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT task_name, status, attempts FROM procrastinate_jobs"
                " WHERE task_name LIKE 'test.%'"
            )
        )
        return {row.task_name: (row.status, row.attempts) for row in rows}


def run_and_signal_after(runtime: Runtime, seconds: float, plan: WorkerPlan) -> float:
    async def scenario() -> None:
        asyncio.get_running_loop().call_later(seconds, os.kill, os.getpid(), signal.SIGTERM)
        await serve(runtime, workers=[plan])

    started = time.monotonic()
    asyncio.run(scenario())
    return time.monotonic() - started


def test_sigterm_waits_for_a_job_that_finishes_in_time(runtime: Runtime) -> None:
    register_test_tasks(runtime.job_app)
    with runtime.engine.begin() as connection:
        defer_in_transaction(connection, runtime.job_app, "test.short")

    took = run_and_signal_after(runtime, 0.3, WorkerPlan(queues=["maintenance"], concurrency=2))

    assert statuses(runtime) == {"test.short": ("succeeded", 1)}
    assert took < 5


def test_sigterm_hands_back_a_job_that_outlives_the_grace_period(runtime: Runtime) -> None:
    register_test_tasks(runtime.job_app)
    with runtime.engine.begin() as connection:
        defer_in_transaction(connection, runtime.job_app, "test.endless")

    plan = WorkerPlan(queues=["maintenance"], concurrency=2, shutdown_grace=0.5)
    took = run_and_signal_after(runtime, 0.3, plan)

    status, attempts = statuses(runtime)["test.endless"]
    assert (status, attempts) == ("todo", 1)  # back in the queue for another worker
    assert took < 5


def test_the_job_of_a_dead_worker_is_retried_and_completes_once(runtime: Runtime) -> None:
    runs = register_test_tasks(runtime.job_app)
    with runtime.engine.begin() as connection:
        job_id = defer_in_transaction(connection, runtime.job_app, "test.short")
        # A worker took the job, then died: its heartbeat stopped five minutes ago.
        dead_worker = connection.scalar(
            sa.text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '5 minutes') RETURNING id"
            )
        )
        connection.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :j"),
            {"w": dead_worker, "j": job_id},
        )
        defer_in_transaction(
            connection, runtime.job_app, "maintenance.retry_stalled_jobs", timestamp=0
        )

    asyncio.run(serve(runtime, workers=[WorkerPlan(queues=["maintenance"])], burst=True))

    assert statuses(runtime)["test.short"][0] == "succeeded"
    assert runs == ["short"]


def test_a_stalled_periodic_job_whose_next_tick_waits_is_failed_not_duplicated(
    runtime: Runtime,
) -> None:
    """Back in the queue, a stalled tick would hold the queueing lock of the tick already
    waiting (PostgreSQL refuses two): it is marked failed, and the waiting one does the work."""
    with runtime.engine.begin() as connection:
        stalled = defer_in_transaction(
            connection,
            runtime.job_app,
            "tokens.cleanup",
            queueing_lock="tokens.cleanup",
            timestamp=1,
        )
        dead_worker = connection.scalar(
            sa.text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '5 minutes') RETURNING id"
            )
        )
        connection.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :j"),
            {"w": dead_worker, "j": stalled},
        )
        waiting = defer_in_transaction(
            connection,
            runtime.job_app,
            "tokens.cleanup",
            queueing_lock="tokens.cleanup",
            timestamp=2,
        )

    summary = retry_stalled_jobs(runtime.engine, stalled_after=60)

    assert (summary.retried, summary.failed) == (0, 1)
    with runtime.engine.connect() as connection:
        rows = dict(connection.execute(sa.text("SELECT id, status FROM procrastinate_jobs")).all())
    assert rows == {stalled: "failed", waiting: "todo"}


def test_a_stop_request_while_workers_start_ends_everything_promptly(runtime: Runtime) -> None:
    plans = [WorkerPlan(queues=[queue], concurrency=2) for queue in QUEUES]

    async def scenario() -> None:
        # The signal lands before any worker has finished registering itself.
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        await serve(runtime, workers=plans)

    for _ in range(3):
        started = time.monotonic()
        asyncio.run(scenario())
        assert time.monotonic() - started < 5
    with runtime.engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM procrastinate_workers")) == 0
