"""What operators do to jobs: run them again, or cancel them before they start; one job, or
every job a filter selects, in one transaction.

The changes are procrastinate's own (3.10's `procrastinate_retry_job_v2` and
`procrastinate_cancel_job_v1` make the same ones, job by job), with two differences a person
retrying a job expects: a failed job's attempts are not counted again (the worker counted its
last run when it failed), and the workers are woken (procrastinate's trigger wakes them for a new
job only; a job put back waited for their next poll). A job in a status the action does not
apply to is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa

from planner_jobs.engine.views import STALLED, JobFilter
from planner_jobs.errors import PlannerError


class JobActionRefused(PlannerError):
    """The job is not in a state this action applies to."""


class _Chosen(NamedTuple):
    id: int
    status: str
    queueing_lock: str | None


_LOCKED = sa.text(
    f"SELECT j.id, j.status::text, j.queueing_lock, {STALLED} AS stalled"  # noqa: S608
    " FROM procrastinate_jobs j WHERE j.id = :id FOR UPDATE"
)
# Back in its queue, to run now. A stalled job's lost run is counted, as procrastinate counts
# the run of a job it retries while running; a failed one's was counted when it failed.
_BACK = sa.text(
    """
    UPDATE procrastinate_jobs SET status = 'todo', scheduled_at = NULL, abort_requested = false,
           attempts = attempts + CASE WHEN status = 'doing' THEN 1 ELSE 0 END
     WHERE id = ANY(CAST(:ids AS bigint[]))
    RETURNING queue_name
    """
)
# procrastinate's trigger records a failed or running job's return; it has none for the others.
_RETRIED = sa.text(
    "INSERT INTO procrastinate_events (job_id, type)"
    " SELECT id, 'retried' FROM unnest(CAST(:ids AS bigint[])) AS id"
)
# What a worker listens for (procrastinate's insert trigger sends it for a new job).
_WAKE = sa.text(
    "SELECT pg_notify('procrastinate_queue_v1#' || queue, payload),"
    " pg_notify('procrastinate_any_queue_v1', payload)"
    " FROM unnest(CAST(:queues AS text[])) AS queue,"
    " CAST(json_build_object('type', 'job_inserted', 'job_id', 0) AS text) AS payload"
)


def _put_back(connection: sa.Connection, chosen: Sequence[_Chosen]) -> int:
    """Put the chosen jobs (locked) back in their queues and wake their workers."""
    if not chosen:
        return 0
    rows = connection.execute(_BACK, {"ids": [job.id for job in chosen]})
    queues = sorted({queue for (queue,) in rows})
    others = [job.id for job in chosen if job.status in ("cancelled", "aborted")]
    if others:
        connection.execute(_RETRIED, {"ids": others})
    wake(connection, queues)
    return len(chosen)


def wake(connection: sa.Connection, queues: Sequence[str]) -> None:
    """Tell the workers of these queues, when the transaction commits, that jobs are ready."""
    if queues:
        connection.execute(_WAKE, {"queues": list(queues)})


def retry(connection: sa.Connection, job_id: int, *, stalled_after: float) -> str:
    """Put a failed, cancelled, aborted or stalled job (its worker silent for `stalled_after`
    seconds) back in its queue, to run now; a one-line account of what was done."""
    row = connection.execute(_LOCKED, {"id": job_id, "stalled_after": stalled_after}).one_or_none()
    if row is None:
        raise JobActionRefused(f"there is no job {job_id}")
    _, status, queueing_lock, stalled = row
    if status not in ("failed", "cancelled", "aborted") and not stalled:
        running = " on a live worker" if status == "doing" else ""
        raise JobActionRefused(
            f"job {job_id} is {status}{running}: only a failed, cancelled, aborted or stalled"
            " job can be retried"
        )
    try:
        with connection.begin_nested():
            _put_back(connection, [_Chosen(job_id, status, queueing_lock)])
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
    if row.status != "todo":
        raise JobActionRefused(
            f"job {job_id} is {row.status}: only a job that has not started can be cancelled"
        )
    connection.execute(
        sa.text("SELECT procrastinate_cancel_job_v1(:id, false, false)"), {"id": job_id}
    )
    return f"job {job_id} is cancelled"


# --- in bulk ----------------------------------------------------------------------------------


class Bulk(NamedTuple):
    action: str  # "retry" or "cancel"
    done: int  # jobs acted on
    skipped: int  # selected, but another job holds their queueing lock

    def line(self) -> str:
        one = self.done == 1
        text = f"{self.done} job{'' if one else 's'} {'is' if one else 'are'} " + (
            ("back in its queue" if one else "back in their queues")
            if self.action == "retry"
            else "cancelled"
        )
        if self.skipped:
            text += (
                f"; {self.skipped} left as they are: a job with the same queueing lock is"
                " waiting already"
            )
        return text


_RETRIABLE = (
    f"(j.status IN ('failed', 'cancelled', 'aborted') OR ({STALLED} AND NOT j.abort_requested))"
)


def count_all(
    connection: sa.Connection, selection: JobFilter, action: str, *, stalled_after: float
) -> int:
    """How many jobs `retry_all` (action "retry") or `cancel_all` ("cancel") would consider."""
    where, parameters = selection.where()
    where.append(_RETRIABLE if action == "retry" else "j.status = 'todo'")
    return int(
        connection.execute(
            sa.text(
                "SELECT count(*) FROM procrastinate_jobs j"  # noqa: S608 (constant fragments)
                f" WHERE {' AND '.join(where)}"
            ),
            {**parameters, "stalled_after": stalled_after},
        ).scalar_one()
    )


def retry_all(connection: sa.Connection, selection: JobFilter, *, stalled_after: float) -> Bulk:
    """Put back in their queues every failed, cancelled, aborted or stalled job the filter
    selects (a job whose queueing lock another waiting job holds, or a newer one of those
    selected does, stays as it is), in the caller's transaction."""
    where, parameters = selection.where()
    where.append(_RETRIABLE)
    rows = connection.execute(
        sa.text(
            "SELECT j.id, j.status::text, j.queueing_lock FROM procrastinate_jobs j"  # noqa: S608
            f" WHERE {' AND '.join(where)} ORDER BY j.id DESC FOR UPDATE OF j"
        ),
        {**parameters, "stalled_after": stalled_after},
    )
    chosen = [_Chosen(*row) for row in rows]
    locks = [job.queueing_lock for job in chosen if job.queueing_lock is not None]
    held = set(
        connection.execute(
            sa.text(
                "SELECT queueing_lock FROM procrastinate_jobs"
                " WHERE status = 'todo' AND queueing_lock = ANY(CAST(:locks AS text[]))"
            ),
            {"locks": locks},
        ).scalars()
        if locks
        else ()
    )
    going: list[_Chosen] = []
    for job in chosen:  # newest first: the newest of those sharing a lock goes back
        if job.queueing_lock is not None:
            if job.queueing_lock in held:
                continue
            held.add(job.queueing_lock)
        going.append(job)
    return Bulk("retry", _put_back(connection, going), len(chosen) - len(going))


def cancel_all(connection: sa.Connection, selection: JobFilter) -> Bulk:
    """Cancel every job the filter selects that has not started, in the caller's transaction."""
    where, parameters = selection.where()
    where.append("j.status = 'todo'")
    cancelled = connection.execute(
        sa.text(
            "UPDATE procrastinate_jobs AS j SET status = 'cancelled'"  # noqa: S608 (constants)
            f" WHERE {' AND '.join(where)}"
        ),
        parameters,
    ).rowcount
    return Bulk("cancel", cancelled, 0)
