"""The hourly cleanup of expired password-reset tokens."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from planner_jobs.db.tokens import clear_expired_tokens
from planner_jobs.domain.days import require_aware

BATCH_SIZE = 5000  # users per transaction


@dataclass(frozen=True)
class CleanupSummary:
    cleared: int
    seconds: float

    def line(self) -> str:
        return f"cleared {self.cleared} expired password-reset tokens in {self.seconds:.2f} s"


def cleanup_tokens(
    engine: Engine, *, now: dt.datetime, batch_size: int = BATCH_SIZE
) -> CleanupSummary:
    """Clear every token that expired before `now`, a batch per transaction."""
    require_aware(now)
    started = time.perf_counter()
    cleared = 0
    while True:
        with engine.begin() as connection:
            count = clear_expired_tokens(connection, now=now, limit=batch_size)
        cleared += count
        if count < batch_size:
            return CleanupSummary(cleared=cleared, seconds=time.perf_counter() - started)
