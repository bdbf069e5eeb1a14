"""What a worker records of every job it runs, for operators: the process's metrics (outcome,
duration, the wait before it started), each failed attempt with its traceback (`job_failures`),
jobs finished per minute (`job_counts`, added up here and written every few seconds), and the
job's identity on every line it logs."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
import traceback
from typing import Any

import procrastinate
from procrastinate.exceptions import JobAborted

from planner_jobs.db import job_counts
from planner_jobs.engine.context import Rescheduled
from planner_jobs.logs import job_context
from planner_jobs.metrics import Metrics

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
MAX_TRACEBACK = 20_000  # characters kept of a traceback

_QUEUED_AT = "SELECT min(at) AS at FROM procrastinate_events WHERE job_id = %(id)s"
_FAILURE = """
INSERT INTO job_failures (job_id, attempt, worker_id, exception, message, traceback)
VALUES (%(job_id)s, %(attempt)s, %(worker_id)s, %(exception)s, %(message)s, %(traceback)s)
"""


class JobObserver:
    """A procrastinate worker middleware (`middleware`) and its background writer (`run`)."""

    def __init__(self, job_app: procrastinate.App, metrics: Metrics) -> None:
        self._connector = job_app.connector
        self._metrics = metrics
        self._counts: collections.Counter[job_counts.Key] = collections.Counter()

    async def middleware(
        self, call_next: Any, context: procrastinate.JobContext, worker: Any
    ) -> Any:
        job = context.job
        task, queue, attempt = job.task_name, job.queue, job.attempts + 1
        await self._observe_wait(job)
        outcome = "failed"
        started = time.perf_counter()
        user = job.task_kwargs.get("userId")
        with job_context(job_id=job.id, task=task, queue=queue, attempt=attempt, user_id=user):
            try:
                result = await call_next()
            except Rescheduled:
                outcome = "rescheduled"
                raise
            except (JobAborted, asyncio.CancelledError) as exc:
                outcome = "aborted"
                await self._record_failure(job.id, attempt, getattr(worker, "worker_id", None), exc)
                raise
            except Exception as exc:
                await self._record_failure(job.id, attempt, getattr(worker, "worker_id", None), exc)
                raise
            else:
                outcome = "succeeded"
                return result
            finally:
                self._metrics.jobs.labels(task=task, outcome=outcome).inc()
                self._metrics.job_seconds.labels(task=task).observe(time.perf_counter() - started)
                minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
                self._counts[(minute, queue, task, outcome)] += 1

    async def run(self) -> None:
        """Write the counts every few seconds until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        counts, self._counts = self._counts, collections.Counter()
        if not counts:
            return
        try:
            await self._connector.execute_query_async(
                job_counts.ADD, **job_counts.parameters(counts)
            )
        except Exception:  # the database is away: keep them for the next flush
            self._counts.update(counts)
            log.warning("could not write the counts of finished jobs yet", exc_info=True)

    async def _observe_wait(self, job: Any) -> None:
        """How long the job waited to start since it was ready (scheduled, or queued)."""
        ready = job.scheduled_at
        try:
            if ready is None:
                row = await self._connector.execute_query_one_async(_QUEUED_AT, id=job.id)
                ready = row["at"]
        except Exception:
            log.debug("no wait recorded for job %s", job.id, exc_info=True)
            return
        if ready is not None:
            wait = (dt.datetime.now(dt.UTC) - ready).total_seconds()
            self._metrics.job_wait.labels(queue=job.queue).observe(max(0.0, wait))

    async def _record_failure(
        self, job_id: int | None, attempt: int, worker_id: int | None, error: BaseException
    ) -> None:
        text = "".join(traceback.format_exception(error))
        try:
            await self._connector.execute_query_async(
                _FAILURE,
                job_id=job_id,
                attempt=attempt,
                worker_id=worker_id,
                exception=f"{type(error).__module__}.{type(error).__qualname__}",
                message=str(error)[:2000],
                traceback=text[-MAX_TRACEBACK:],
            )
        except Exception:  # never hide the job's own failure behind this one
            log.warning("could not record the failure of job %s", job_id, exc_info=True)
