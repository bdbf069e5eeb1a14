"""What operators do to a job: run it again, or cancel it before it starts.

Both go through procrastinate's own functions where it has one (3.10's `procrastinate_retry_job_v2`
and `procrastinate_cancel_job_v1`); a job in a status the action does not apply to is refused
with the reason.
"""

from __future__ import annotations

import sqlalchemy as sa

from planner_jobs.engine.views import STALLED
from planner_jobs.errors import PlannerError


class JobActionRefused(PlannerError):
    """The job is not in a state this action applies to."""


_LOCKED = sa.text(
    f"SELECT j.status::text, j.queueing_lock, {STALLED} AS stalled"  # noqa: S608 (constants)
    " FROM procrastinate_jobs j WHERE j.id = :id FOR UPDATE"
)


_RETRIED = sa.text("INSERT INTO procrastinate_events (job_id, type) VALUES (:id, 'retried')")


def retry(connection: sa.Connection, job_id: int, *, stalled_after: float) -> str:
    """Put a failed, cancelled, aborted or stalled job (its worker silent for `stalled_after`
    seconds) back in its queue, to run now; a one-line account of what was done."""
    row = connection.execute(_LOCKED, {"id": job_id, "stalled_after": stalled_after}).one_or_none()
    if row is None:
        raise JobActionRefused(f"there is no job {job_id}")
    status, queueing_lock, stalled = row
    if status not in ("failed", "cancelled", "aborted") and not stalled:
        running = " on a live worker" if status == "doing" else ""
        raise JobActionRefused(
            f"job {job_id} is {status}{running}: only a failed, cancelled, aborted or stalled"
            " job can be retried"
        )
    try:
        with connection.begin_nested():
            if status in ("failed", "doing"):
                connection.execute(
                    sa.text("SELECT procrastinate_retry_job_v2(:id, NULL, NULL, NULL, NULL)"),
                    {"id": job_id},
                )
            else:  # procrastinate has no way back from these: the same change, by hand
                connection.execute(
                    sa.text(
                        "UPDATE procrastinate_jobs SET status = 'todo', scheduled_at = NULL,"
                        " abort_requested = false WHERE id = :id"
                    ),
                    {"id": job_id},
                )
                connection.execute(_RETRIED, {"id": job_id})
    except sa.exc.IntegrityError:
        raise JobActionRefused(
            f"job {job_id} cannot be retried: a job with its queueing lock {queueing_lock!r}"
            " is waiting already"
        ) from None
    was = "stalled" if status == "doing" else status
    return f"job {job_id} ({was}) is back in its queue"


def cancel(connection: sa.Connection, job_id: int) -> str:
    """Cancel a job that has not started; a one-line account."""
    row = connection.execute(_LOCKED, {"id": job_id, "stalled_after": 0}).one_or_none()
    if row is None:
        raise JobActionRefused(f"there is no job {job_id}")
    if row[0] != "todo":
        raise JobActionRefused(
            f"job {job_id} is {row[0]}: only a job that has not started can be cancelled"
        )
    connection.execute(
        sa.text("SELECT procrastinate_cancel_job_v1(:id, false, false)"), {"id": job_id}
    )
    return f"job {job_id} is cancelled"
