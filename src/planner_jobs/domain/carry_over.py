"""What counts as done on a day, and where unfinished plan tasks go when it closes."""

from __future__ import annotations

import datetime as dt
import enum


class CarryOver(enum.StrEnum):
    NEXT_DAY = "next_day"
    INBOX = "inbox"
    NONE = "none"


def plan_task_done(completed: bool, completed_at: dt.datetime | None, day_end: dt.datetime) -> bool:
    """A plan task counts as done for its day when it was completed before the day ended."""
    return completed and (completed_at is None or completed_at < day_end)


def routine_task_done(
    completed: bool,
    completed_at: dt.datetime | None,
    day_start: dt.datetime,
    day_end: dt.datetime,
) -> bool:
    """A routine task counts for a day when it was completed inside that day.

    Those are the routine tasks reset when the day closes; one completed after the day ended
    (before a late sweep) keeps its state and counts for the next day.
    """
    return completed and (completed_at is None or day_start <= completed_at < day_end)


def carried_to(mode: CarryOver, *, done: bool) -> CarryOver | None:
    """Where a task of the closing day's plan goes: the next day's plan or the inbox.

    None when it stays: it was done on that day, or the user carries nothing over.
    """
    if done or mode is CarryOver.NONE:
        return None
    return mode
