from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from planner_jobs.db.models import User
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.engine.queues import QUEUES
from planner_jobs.engine.worker import WorkerPlan
from planner_jobs.runtime import Runtime, open_runtime
from planner_jobs.service import serve
from planner_jobs.settings import Settings


def job_rows(runtime: Runtime) -> list[tuple[str, str, str]]:
    with runtime.engine.connect() as connection:
        return [
            (row.task_name, row.queue_name, row.status)
            for row in connection.execute(
                sa.text("SELECT task_name, queue_name, status FROM procrastinate_jobs ORDER BY id")
            )
        ]


def test_the_app_knows_every_queue_and_periodic_task(runtime: Runtime) -> None:
    queues = {
        task.queue for task in runtime.job_app.tasks.values() if not task.name.startswith("builtin")
    }
    periodic = {
        task.task.name for task in runtime.job_app.periodic_registry.periodic_tasks.values()
    }

    assert queues <= set(QUEUES)
    assert "maintenance.retry_stalled_jobs" in periodic


def test_a_job_deferred_in_a_transaction_exists_only_if_it_commits(runtime: Runtime) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(sa.insert(User).values(email="kept@example.com"))
        defer_in_transaction(
            connection, runtime.job_app, "maintenance.retry_stalled_jobs", timestamp=1
        )

    def request_failing_after_queueing() -> None:
        with runtime.engine.begin() as connection:
            connection.execute(sa.insert(User).values(email="lost@example.com"))
            defer_in_transaction(
                connection, runtime.job_app, "maintenance.retry_stalled_jobs", timestamp=2
            )
            raise RuntimeError("the request failed after queueing")

    with pytest.raises(RuntimeError):
        request_failing_after_queueing()

    assert job_rows(runtime) == [("maintenance.retry_stalled_jobs", "maintenance", "todo")]


def test_a_queueing_lock_conflict_leaves_the_transaction_usable(runtime: Runtime) -> None:
    with runtime.engine.begin() as connection:
        first = defer_in_transaction(
            connection,
            runtime.job_app,
            "maintenance.retry_stalled_jobs",
            queueing_lock="one",
            timestamp=1,
        )
        second = defer_in_transaction(
            connection,
            runtime.job_app,
            "maintenance.retry_stalled_jobs",
            queueing_lock="one",
            timestamp=2,
        )
        connection.execute(sa.insert(User).values(email="after@example.com"))

    assert first is not None
    assert second is None
    with runtime.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_a_burst_worker_runs_the_ready_jobs_and_returns(settings: Settings) -> None:
    with open_runtime(settings, periodic=False) as runtime:
        burst_through_two_jobs(runtime)


def burst_through_two_jobs(runtime: Runtime) -> None:
    with runtime.engine.begin() as connection:
        for task in ("maintenance.retry_stalled_jobs", "maintenance.prune_finished_jobs"):
            defer_in_transaction(connection, runtime.job_app, task, timestamp=1)

    asyncio.run(serve(runtime, workers=[WorkerPlan(queues=QUEUES, concurrency=2)], burst=True))

    assert [(task, status) for task, _, status in job_rows(runtime)] == [
        ("maintenance.retry_stalled_jobs", "succeeded"),
        ("maintenance.prune_finished_jobs", "succeeded"),
    ]
    runs = runtime.metrics.jobs.labels(task="maintenance.retry_stalled_jobs", outcome="succeeded")
    assert runs._value.get() == 1
