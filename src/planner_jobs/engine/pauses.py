"""Paused queues: an operator pauses a queue (`planner-jobs jobs pause QUEUE`) and no worker takes
its jobs from the moment the pause commits; the jobs already running finish, and jobs keep
being queued into it. The pause is a row (`queue_pauses`), so it outlives every process.

The workers honour it in procrastinate's own fetch (`PausingJobManager`): the statement that
takes a job reads the pauses itself, so no fetch goes by an old copy of them (a job retried
just after a pause waits, and a resume is seen by the first fetch it wakes).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from procrastinate import sql
from procrastinate.jobs import Job
from procrastinate.manager import JobManager

from planner_jobs.engine.actions import wake
from planner_jobs.engine.queues import PAUSED, QUEUES, known_queue

# procrastinate's own `fetch_job` query (its columns are what `Job.from_row` reads), asking only
# for the wanted queues that are not paused (an empty array: none; NULL, all queues, while none
# is paused and the worker wants them all).
_WANTED = "%(queues)s::varchar[]"
_NOT_PAUSED = f"""CASE WHEN NOT EXISTS ({PAUSED}) THEN {_WANTED}
     ELSE ARRAY(SELECT wanted FROM unnest(coalesce({_WANTED}, %(every_queue)s::varchar[])) AS wanted
                 WHERE wanted NOT IN ({PAUSED}))
END"""  # noqa: S608 (constants)
if sql.queries["fetch_job"].count(_WANTED) != 1:  # a procrastinate upgrade changed it: look again
    raise RuntimeError("procrastinate's fetch_job query no longer takes its queues as expected")
_FETCH = sql.queries["fetch_job"].replace(_WANTED, _NOT_PAUSED)


def pause(connection: sa.Connection, queue: str) -> str:
    """Pause a queue (again: nothing changes); a one-line account."""
    known_queue(queue)
    connection.execute(
        sa.text("INSERT INTO queue_pauses (queue) VALUES (:queue) ON CONFLICT DO NOTHING"),
        {"queue": queue},
    )
    return (
        f"queue {queue} is paused: workers take none of its jobs until"
        f" `planner-jobs jobs resume {queue}` (running jobs finish; new jobs wait in it)"
    )


def resume(connection: sa.Connection, queue: str) -> str:
    """Resume a paused queue and wake its workers; a one-line account."""
    known_queue(queue)
    deleted = connection.execute(
        sa.text("DELETE FROM queue_pauses WHERE queue = :queue"), {"queue": queue}
    ).rowcount
    if not deleted:
        return f"queue {queue} was not paused"
    wake(connection, [queue])
    return f"queue {queue} is resumed: workers take its jobs again"


class PausingJobManager(JobManager):
    """procrastinate's job manager, fetching no job of a paused queue."""

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> Job | None:
        row = await self.connector.execute_query_one_async(
            query=_FETCH,
            queues=list(queues) if queues is not None else None,
            every_queue=list(QUEUES),
            worker_id=worker_id,
        )
        if row["id"] is None:
            return None
        return Job.from_row(row)
