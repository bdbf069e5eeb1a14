"""The job engine's queues, and the statuses its jobs go through (procrastinate's, but
`aborting`, which 3.x no longer sets): a module of its own, so that the CLI names them without
loading the tasks."""

from __future__ import annotations

from typing import Literal

from planner_jobs.errors import UsageError

Queue = Literal["exports", "notifications", "maintenance"]
QUEUES: tuple[Queue, ...] = ("exports", "notifications", "maintenance")
STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")

# The queues an operator has paused (`engine.pauses`): every question about them asks this.
PAUSED = "SELECT queue FROM queue_pauses"


def known_queue(queue: str) -> str:
    """The queue, or a UsageError naming the queues there are."""
    if queue not in QUEUES:
        raise UsageError(f"there is no queue {queue!r}: the queues are {', '.join(QUEUES)}")
    return queue
