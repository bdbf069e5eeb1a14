"""The job engine's queues, and the statuses its jobs go through (procrastinate's, but
`aborting`, which 3.x no longer sets): a module of its own, so that the CLI names them without
loading the tasks."""

from __future__ import annotations

from typing import Literal

Queue = Literal["exports", "notifications", "maintenance"]
QUEUES: tuple[Queue, ...] = ("exports", "notifications", "maintenance")
STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
