"""Paused queues: an operator pauses a queue (`planner-jobs jobs pause QUEUE`) and every worker
stops taking its jobs within a second or two; the jobs already running finish, and jobs keep
being queued into it. The pause is a row (`queue_pauses`), so it outlives every process.

The workers honour it in procrastinate's own fetch (`PausingJobManager`): each fetch asks only
for the queues not paused, as last read (at most a second ago, or at once while one of its
queues is paused, so a resume is seen by the first fetch it wakes).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
from procrastinate.jobs import Job
from procrastinate.manager import JobManager

from planner_jobs.engine.actions import wake
from planner_jobs.engine.queues import PAUSED, QUEUES, known_queue

READ_EVERY = 1.0  # seconds a worker goes by the pauses it read last

_PAUSED = f"SELECT coalesce(array_agg(queue), '{{}}') AS queues FROM ({PAUSED}) AS paused"  # noqa: S608 (constants)


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

    def __init__(self, connector: object) -> None:
        super().__init__(connector)  # type: ignore[arg-type]
        self._paused: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> Job | None:
        wanted = list(queues) if queues is not None else None
        if time.monotonic() - self._read_at > READ_EVERY or self._paused & set(wanted or QUEUES):
            row = await self.connector.execute_query_one_async(_PAUSED)
            self._paused, self._read_at = frozenset(row["queues"]), time.monotonic()
        if self._paused:
            wanted = [queue for queue in wanted or QUEUES if queue not in self._paused]
            if not wanted:
                return None
        return await super().fetch_job(wanted, worker_id)
