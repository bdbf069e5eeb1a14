"""The job engine's queues: a module of its own, so that the CLI names them without loading
the tasks."""

from __future__ import annotations

from typing import Literal

Queue = Literal["exports", "notifications", "maintenance"]
QUEUES: tuple[Queue, ...] = ("exports", "notifications", "maintenance")
