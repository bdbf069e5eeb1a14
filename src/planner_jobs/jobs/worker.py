"""Running procrastinate workers with our options, metrics and the burst mode of the CLI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import procrastinate
import procrastinate.worker

from planner_jobs.jobs.context import CONTEXT_KEY, Collaborators
from planner_jobs.jobs.maintenance import retry_stalled_jobs
from planner_jobs.jobs.observer import JobObserver
from planner_jobs.jobs.outbox import Relay, drain_all
from planner_jobs.storage.staging import StagingArea

log = logging.getLogger(__name__)

# In-flight jobs get this long to finish after a stop request; then async jobs are cancelled and
# sync ones are asked to abort (they check `context.should_abort()`), and the job is retried.
SHUTDOWN_GRACE_SECONDS = 10.0
HEARTBEAT_SECONDS = 10.0
STAGING_SWEEP_SECONDS = 60.0  # how often a process working on exports clears dead staging files

_READY_JOBS = """
SELECT EXISTS (
    SELECT 1 FROM procrastinate_jobs
     WHERE status = 'todo'
       AND queue_name = ANY(%(queues)s::varchar[])
       AND (scheduled_at IS NULL OR scheduled_at <= now())
) OR (%(outbox)s AND EXISTS (SELECT 1 FROM notifications WHERE drained_at IS NULL)) AS ready
"""


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker works on."""

    queues: Sequence[str]
    concurrency: int = 1
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS


# What `planner-jobs run` starts: a worker per queue, so a long export never delays a reminder.
ONE_MACHINE = (
    WorkerPlan(queues=("notifications",), concurrency=8),
    WorkerPlan(queues=("exports",), concurrency=2),
    WorkerPlan(queues=("maintenance",), concurrency=2),
)


def worker_options(
    collaborators: Collaborators, plan: WorkerPlan, observer: JobObserver
) -> dict[str, Any]:
    stalled_after = collaborators.settings.stalled_after
    return {
        "queues": list(plan.queues),
        "concurrency": plan.concurrency,
        "name": "worker:" + ",".join(plan.queues),
        "shutdown_graceful_timeout": plan.shutdown_grace,
        "additional_context": {CONTEXT_KEY: collaborators},
        "worker_middleware": [observer.middleware],
        # A worker silent for PLANNER_STALLED_AFTER is dead: a live one beats well inside it,
        # and one starting forgets the rows of dead ones (their jobs then count as stalled).
        "update_heartbeat_interval": min(HEARTBEAT_SECONDS, stalled_after / 3),
        "stalled_worker_timeout": stalled_after,
    }


class WorkerRunner:
    """One procrastinate worker (several passes in burst mode) that can be stopped gracefully at
    any moment, even while it is still starting.

    Stopping asks procrastinate to stop (in-flight jobs get `plan.shutdown_grace`, then are
    aborted and handed back) rather than cancelling its task: a cancellation landing in the
    middle of its start-up queries left workers hanging on shutdown.
    """

    def __init__(
        self, collaborators: Collaborators, plan: WorkerPlan, *, burst: bool = False
    ) -> None:
        self._collaborators = collaborators
        self._plan = plan
        self._burst = burst
        self._stopping = False
        self._worker: procrastinate.worker.Worker | None = None
        self._observer = JobObserver(collaborators.job_app, collaborators.metrics)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        self._stopping = True
        if self._worker is not None:
            self._worker.stop()

    async def run(self) -> None:
        """Work until stopped; in burst mode, until no job in the queues is ready.

        A burst run first hands back the jobs of dead workers, so one run after a crash
        finishes the work. A worker of the exports queue clears the staging files of dead
        attempts as it starts and every minute while it runs; one of the notifications queue
        drains the notification outbox (`jobs.outbox`): woken by each raised notification, or,
        in burst mode, before each pass.

        The job app must be open (`async with collaborators.job_app.open_async()`): the
        workers of one process share its connection pool.
        """
        collaborators = self._collaborators
        if self._burst:
            summary = await asyncio.to_thread(
                retry_stalled_jobs,
                collaborators.engine,
                stalled_after=collaborators.settings.stalled_after,
            )
            if summary.retried or summary.failed:
                log.info(summary.line())
        helpers = [self._observer.run()]
        if "exports" in self._plan.queues:
            helpers.append(_sweep_staging(collaborators.staging))
        if "notifications" in self._plan.queues and not self._burst:
            helpers.append(
                Relay(collaborators.engine, collaborators.job_app, collaborators.metrics).run()
            )
        running = [asyncio.create_task(helper) for helper in helpers]
        try:
            await self._work()
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _work(self) -> None:
        app = self._collaborators.job_app
        app.perform_import_paths()
        options = worker_options(self._collaborators, self._plan, self._observer)
        drains = "notifications" in self._plan.queues
        while not self._stopping:
            if self._burst and drains:
                await asyncio.to_thread(
                    drain_all,
                    self._collaborators.engine,
                    self._collaborators.job_app,
                    metrics=self._collaborators.metrics,
                )
            self._worker = procrastinate.worker.Worker(
                app=app, **options, wait=not self._burst, install_signal_handlers=False
            )
            running = asyncio.create_task(self._worker.run())
            await asyncio.sleep(0)  # run() forgets earlier stop requests as it starts...
            if self.stopping:
                self._worker.stop()  # ...so repeat one made meanwhile
            await running
            if not self._burst:
                return
            # A pass ends when a fetch finds nothing; jobs that running jobs queued meanwhile
            # (an export's notification) are ready after it, so keep going until none is.
            row = await app.connector.execute_query_one_async(
                _READY_JOBS, queues=list(self._plan.queues), outbox=drains
            )
            if not row["ready"]:
                return


async def _sweep_staging(staging: StagingArea) -> None:
    while True:
        try:
            await asyncio.to_thread(staging.sweep)
        except OSError as exc:
            log.warning("could not sweep the staging folder %s: %s", staging.folder, exc)
        await asyncio.sleep(STAGING_SWEEP_SECONDS)
