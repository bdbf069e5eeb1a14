"""Running procrastinate workers with our options, metrics and the burst mode of the CLI.

The runner knows the job engine only: what a worker runs besides its jobs (a use case's
housekeeping, taking in what other programs raised) is handed to it by the composition root
(`Beside`), so the engine imports no use case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import procrastinate
import procrastinate.worker

from planner_jobs import logs
from planner_jobs.db.engine import first_line
from planner_jobs.engine.context import CONTEXT_KEY, Collaborators
from planner_jobs.engine.maintenance import retry_stalled_jobs
from planner_jobs.engine.observer import JobObserver
from planner_jobs.engine.queues import PAUSED

log = logging.getLogger(__name__)
events = logs.events(__name__)

# In-flight jobs get this long to finish after a stop request; then async jobs are cancelled and
# sync ones are asked to abort (they check `context.should_abort()`), and the job is retried.
SHUTDOWN_GRACE_SECONDS = 10.0
HEARTBEAT_SECONDS = 10.0
RESTART_WAITS = (0.5, 1.0, 2.0, 5.0)  # seconds before starting again a worker that died

_READY_JOBS = f"""
SELECT EXISTS (
    SELECT 1 FROM procrastinate_jobs
     WHERE status = 'todo'
       AND queue_name = ANY(%(queues)s::varchar[])
       AND queue_name NOT IN ({PAUSED})
       AND (scheduled_at IS NULL OR scheduled_at <= now())
) AS ready
"""  # noqa: S608 (constants)


_DESCRIBE = """
WITH forgotten AS (
    DELETE FROM worker_processes p
     WHERE NOT EXISTS (SELECT FROM procrastinate_workers w WHERE w.id = p.worker_id)
)
INSERT INTO worker_processes (worker_id, host, pid, queues)
VALUES (%(worker_id)s, %(host)s, %(pid)s, %(queues)s)
ON CONFLICT (worker_id) DO NOTHING
"""


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker works on."""

    queues: Sequence[str]
    concurrency: int = 1
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS


@dataclass(frozen=True)
class Beside:
    """What a worker runs besides its jobs, given by the composition root: coroutines that run
    as long as it does (a sweep every minute); in burst mode, `take_in()` before each pass (what
    other programs raised, turned into jobs) and `waiting()` after it (whether anything raised
    still waits, which keeps the burst going). Both are blocking: run on a thread."""

    alongside: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    take_in: Callable[[], object] | None = None
    waiting: Callable[[], bool] = field(default=lambda: False)


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
        self,
        collaborators: Collaborators,
        plan: WorkerPlan,
        *,
        burst: bool = False,
        beside: Beside | None = None,
    ) -> None:
        self._collaborators = collaborators
        self._plan = plan
        self._burst = burst
        self._beside = beside or Beside()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._worker: procrastinate.worker.Worker | None = None
        self._observer = JobObserver(collaborators.job_app, collaborators.metrics)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        self._stopping = True
        self._stop_requested.set()
        if self._worker is not None:
            self._worker.stop()

    async def run(self) -> None:
        """Work until stopped; in burst mode, until no job in the queues is ready.

        A burst run first hands back the jobs of dead workers, so one run after a crash
        finishes the work, and runs `beside.take_in` before each pass.

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
        helpers = [self._observer.run(), *(run() for run in self._beside.alongside)]
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
        if not self._burst:
            await self._work_until_stopped(options)
            return
        take_in = self._beside.take_in
        while not self._stopping:
            if take_in is not None:
                await asyncio.to_thread(take_in)
            await self._one_worker(options, wait=False)
            # A pass ends when a fetch finds nothing; jobs that running jobs queued meanwhile
            # (an export's notification) are ready after it, so keep going until none is.
            row = await app.connector.execute_query_one_async(
                _READY_JOBS, queues=list(self._plan.queues)
            )
            if not row["ready"] and not await asyncio.to_thread(self._beside.waiting):
                return

    async def _work_until_stopped(self, options: dict[str, Any]) -> None:
        """Run a worker until asked to stop, and start it again whenever it ends by itself.

        procrastinate stops a worker when its listening connection is lost or a query of its
        own fails (the database restarting, a failover, `pg_terminate_backend`); nothing would
        take work again until a person restarted the process. Here the dead worker's running
        jobs are handed back at once (it is unregistered, so they count as stalled) and a new
        worker starts, after a short wait that grows while the database stays away.
        """
        failures = 0
        while not self._stop_requested.is_set():
            started = time.monotonic()
            try:
                await self._one_worker(options, wait=True)
                reason = "it stopped by itself (see the lines above)"
            except Exception as exc:  # the database is away, or the worker's own query failed
                reason = f"{type(exc).__name__}: {first_line(exc)}"
            if self._stop_requested.is_set():
                return
            if time.monotonic() - started > RESTART_WAITS[-1] * 12:
                failures = 0  # it had worked a good while: this is a new incident
            dead = self._worker.worker_id if self._worker is not None else None
            wait = RESTART_WAITS[min(failures, len(RESTART_WAITS) - 1)]
            failures += 1
            events.warning(
                "worker ended: starting it again",
                queues=list(self._plan.queues),
                reason=reason,
                in_seconds=wait,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), timeout=wait)
            if dead is not None:
                await self._hand_back_jobs_of(dead)

    async def _one_worker(self, options: dict[str, Any], *, wait: bool) -> None:
        self._worker = worker = procrastinate.worker.Worker(
            app=self._collaborators.job_app,
            **options,
            wait=wait,
            install_signal_handlers=False,
        )
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(0)  # run() forgets earlier stop requests as it starts...
        if self.stopping:
            worker.stop()  # ...so repeat one made meanwhile
        describing = asyncio.create_task(self._describe(worker, running))
        try:
            await running
        finally:
            describing.cancel()
            await asyncio.gather(describing, return_exceptions=True)

    async def _describe(
        self, worker: procrastinate.worker.Worker, running: asyncio.Task[Any]
    ) -> None:
        """Once procrastinate has registered the worker, say where it runs (the operators'
        Workers page), and forget the processes of workers procrastinate has forgotten."""
        # procrastinate sets the id as it registers the worker, with nothing to wait on.
        while worker.worker_id is None and not running.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if worker.worker_id is None:
            return
        try:
            await self._collaborators.job_app.connector.execute_query_async(
                _DESCRIBE,
                worker_id=worker.worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                queues=list(self._plan.queues),
            )
        except Exception as exc:  # a page the operators read: never a reason to stop working
            log.info("could not record where worker %s runs: %s", worker.worker_id, exc)

    async def _hand_back_jobs_of(self, worker_id: int) -> None:
        """The jobs a dead worker of this process left running go back to their queue now,
        not when its silence makes them stalled; tried again at the next restart if the
        database is still away."""
        collaborators = self._collaborators
        try:
            await collaborators.job_app.job_manager.unregister_worker(worker_id)
            summary = await asyncio.to_thread(
                retry_stalled_jobs,
                collaborators.engine,
                stalled_after=collaborators.settings.stalled_after,
            )
        except Exception as exc:
            log.info("could not hand back the jobs of worker %s yet: %s", worker_id, exc)
            return
        if self._worker is not None:
            self._worker.worker_id = None
        if summary.retried or summary.failed:
            log.info(summary.line())
