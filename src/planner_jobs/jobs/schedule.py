"""The cron schedule: every periodic task, in one place.

procrastinate defers each entry once per tick across all workers (the database deduplicates), and
passes the tick as `timestamp`: tasks use it as their `now`, so a late run does the same work as an
on-time one. A tick can still be missed (worker down, procrastinate#1495), so every periodic task
catches up from stored state instead of assuming it ran at the previous tick.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Periodic:
    task: str
    cron: str


SCHEDULE: tuple[Periodic, ...] = (
    Periodic("rollover.sweep", "* * * * *"),
    Periodic("reminders.sweep", "* * * * *"),
    Periodic("tokens.cleanup", "0 * * * *"),
    Periodic("notifications.prune", "53 3 * * *"),
    Periodic("exports.expire", "41 3 * * *"),
    Periodic("maintenance.retry_stalled_jobs", "* * * * *"),
    Periodic("maintenance.prune_finished_jobs", "23 4 * * *"),
)
