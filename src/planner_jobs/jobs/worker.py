"""Running procrastinate workers with our options, metrics and the burst mode of the CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.exceptions import JobAborted
from procrastinate.middleware import AsyncCallNext, WorkerMiddleware

from planner_jobs.metrics import Metrics

if TYPE_CHECKING:
    from planner_jobs.runtime import Runtime

# In-flight jobs get this long to finish after a stop request; then async jobs are cancelled and
# sync ones are asked to abort (they check `context.should_abort()`), and the job is retried.
SHUTDOWN_GRACE_SECONDS = 10.0

_READY_JOBS = """
SELECT EXISTS (
    SELECT 1 FROM procrastinate_jobs
     WHERE status = 'todo'
       AND queue_name = ANY(%(queues)s::varchar[])
       AND (scheduled_at IS NULL OR scheduled_at <= now())
) AS ready
"""


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker works on."""

    queues: Sequence[str]
    concurrency: int = 1
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS


def metrics_middleware(metrics: Metrics) -> WorkerMiddleware:
    """Count every job by task and outcome, and time it."""

    async def middleware(
        call_next: AsyncCallNext, context: procrastinate.JobContext, worker: Any
    ) -> Any:
        task = context.job.task_name
        outcome = "failed"
        started = time.perf_counter()
        try:
            result = await call_next()
        except (JobAborted, asyncio.CancelledError):
            outcome = "aborted"
            raise
        else:
            outcome = "succeeded"
            return result
        finally:
            metrics.jobs.labels(task=task, outcome=outcome).inc()
            metrics.job_seconds.labels(task=task).observe(time.perf_counter() - started)

    return middleware


def worker_options(runtime: Runtime, plan: WorkerPlan) -> dict[str, Any]:
    return {
        "queues": list(plan.queues),
        "concurrency": plan.concurrency,
        "name": "worker:" + ",".join(plan.queues),
        "shutdown_graceful_timeout": plan.shutdown_grace,
        "additional_context": {"runtime": runtime},
        "worker_middleware": [metrics_middleware(runtime.metrics)],
    }


async def run_worker(
    runtime: Runtime,
    plan: WorkerPlan,
    *,
    burst: bool = False,
    install_signal_handlers: bool = True,
) -> None:
    """Work on `queues` until stopped; in burst mode, until no job in them is ready.

    The job app must be open (`async with runtime.job_app.open_async()`): several workers of one
    process share its connection pool.
    """
    app = runtime.job_app
    options = worker_options(runtime, plan)
    if not burst:
        await app.run_worker_async(
            **options, wait=True, install_signal_handlers=install_signal_handlers
        )
        return
    # A pass ends when a fetch finds nothing; jobs that running jobs queued meanwhile
    # (an export's notification) are ready after it, so keep going until none is.
    while True:
        await app.run_worker_async(
            **options, wait=False, install_signal_handlers=install_signal_handlers
        )
        row = await app.connector.execute_query_one_async(_READY_JOBS, queues=list(plan.queues))
        if not row["ready"]:
            return
