"""Scoring a closed day and carrying the streak forward."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

_CENT = Decimal("0.01")


def score(completed: int, total: int) -> Decimal | None:
    """completed * 100 / total, rounded half up to 2 decimals; None for an empty day."""
    if total <= 0:
        return None
    return (Decimal(completed * 100) / Decimal(total)).quantize(_CENT, rounding=ROUND_HALF_UP)


def meets_goal(completed: int, total: int, threshold: int) -> bool:
    """A day meets the goal when it has tasks and completed * 100 >= threshold * total."""
    return total > 0 and completed * 100 >= threshold * total


def effective_threshold(user_threshold: int | None, default: int) -> int:
    """The user's own threshold when set, else the configured one."""
    return default if user_threshold is None else user_threshold


@dataclass(frozen=True)
class Streak:
    current: int = 0
    longest: int = 0
    last_activity_date: dt.date | None = None

    def after(self, day: dt.date, *, met: bool) -> Streak:
        """The streak once `day` is closed: extended when the day met the goal, else reset."""
        if not met:
            return Streak(
                current=0, longest=self.longest, last_activity_date=self.last_activity_date
            )
        current = self.current + 1
        return Streak(current=current, longest=max(self.longest, current), last_activity_date=day)
