"""Housekeeping of the job engine itself."""

from __future__ import annotations

import logging

import procrastinate

log = logging.getLogger(__name__)

# A worker sends a heartbeat every 10 s; one silent for this long is dead (killed, host lost).
STALLED_AFTER_SECONDS = 60
FINISHED_JOB_RETENTION_HOURS = 7 * 24


async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """Put the jobs of dead workers back in their queue; procrastinate does not do it alone."""
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS))
    for job in stalled:
        log.warning("retrying stalled job %s (its worker stopped answering)", job.call_string)
        await manager.retry_job(job)
    return len(stalled)


async def prune_finished_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Delete finished job rows older than a week, keeping the queue tables small."""
    await context.app.job_manager.delete_old_jobs(
        nb_hours=FINISHED_JOB_RETENTION_HOURS,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
