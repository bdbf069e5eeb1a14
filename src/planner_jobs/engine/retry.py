"""How jobs are run again: the job engine's retry decisions for the tasks that reschedule
themselves (`Rescheduled`), are handed back at shutdown, or lose the database."""

from __future__ import annotations

import procrastinate
import psycopg
import sqlalchemy as sa
from procrastinate.exceptions import ConnectorException, JobAborted
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from planner_jobs.engine.context import Rescheduled

RETRY_PRIORITY = -1  # fresh jobs (priority 0) are fetched before those back to retry
LOST_DATABASE_WAIT = 30  # seconds, while the database is away
LOST_DATABASE_ATTEMPTS = 20


class RescheduledOrBackOff(BaseRetryStrategy):
    """A job that asks to run again (`Rescheduled`) runs at the instant it names, behind fresh
    jobs; one handed back at shutdown runs again at once; one that lost the database waits
    `LOST_DATABASE_WAIT` seconds, `LOST_DATABASE_ATTEMPTS` times. Anything else fails it."""

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> RetryDecision | None:
        if isinstance(exception, Rescheduled):
            return RetryDecision(retry_at=exception.at, priority=RETRY_PRIORITY)
        if isinstance(exception, JobAborted):
            return RetryDecision(retry_in={"seconds": 0})
        lost = (sa.exc.OperationalError, psycopg.OperationalError, ConnectorException)
        if isinstance(exception, lost) and job.attempts < LOST_DATABASE_ATTEMPTS:
            return RetryDecision(retry_in={"seconds": LOST_DATABASE_WAIT})
        return None
