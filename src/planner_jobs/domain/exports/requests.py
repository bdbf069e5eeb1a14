"""Whether a user may start an export now."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_PER_WINDOW = 5  # exports a user may request...
WINDOW = dt.timedelta(hours=24)  # ...in this long
ACTIVE_STATUSES = ("pending", "processing")


def quota_message(retry_after: int) -> str:
    """What a user over the quota is told."""
    return (
        f"at most {MAX_PER_WINDOW} exports in {WINDOW.total_seconds() / 3600:.0f} hours;"
        f" try again in {retry_after} s"
    )


@dataclass(frozen=True)
class Existing:
    """One of the user's export jobs, as far as the decision is concerned."""

    id: str
    format: str
    status: str
    created_at: dt.datetime

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class Start:
    """Create a new job."""


@dataclass(frozen=True)
class Reuse:
    """The same format is already on its way: hand back that job."""

    job_id: str


@dataclass(frozen=True)
class Conflict:
    """Another format is on its way: one export at a time."""

    job_id: str
    format: str


@dataclass(frozen=True)
class TooMany:
    """The 24-hour quota is used; a new request is possible after `retry_after` seconds."""

    retry_after: int


Decision = Start | Reuse | Conflict | TooMany


def decide(requested: str, jobs: Sequence[Existing], *, now: dt.datetime) -> Decision:
    """What a request for `requested` gets, given the user's jobs (any order) at `now`."""
    for job in jobs:
        if job.active:
            if job.format == requested:
                return Reuse(job.id)
            return Conflict(job.id, job.format)
    recent = sorted(job.created_at for job in jobs if job.created_at > now - WINDOW)
    if len(recent) >= MAX_PER_WINDOW:
        # The oldest request of the window that must age out for one more to fit.
        frees_at = recent[len(recent) - MAX_PER_WINDOW] + WINDOW
        return TooMany(retry_after=max(1, math.ceil((frees_at - now).total_seconds())))
    return Start()
