"""The content of an export, as plain values the writers consume row by row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

SCHEMA_VERSION = 1

# The rows are named tuples of values ready to write: a large export makes a million of them,
# and a tuple of strings is the cheapest thing Python builds. The reader hands ids as text,
# instants as ISO 8601 in the user's zone with its offset, dates as YYYY-MM-DD.
Instant = str
Day = str


class UserRow(NamedTuple):
    id: str
    email: str
    timezone: str
    created_at: Instant


class StreakRow(NamedTuple):
    current: int
    longest: int
    last_activity_date: Day | None
    freezes: int


class GoalRow(NamedTuple):
    id: str
    title: str
    description: str | None
    target_date: Day | None
    completed_at: Instant | None
    created_at: Instant


class TaskRow(NamedTuple):
    id: str
    title: str
    notes: str | None
    completed: bool
    completed_at: Instant | None
    due_at: Instant | None
    remind_at: Instant | None
    plan_date: Day | None  # None: in the inbox
    goal_id: str | None
    created_at: Instant


class RoutineTaskRow(NamedTuple):
    id: str
    title: str
    position: int
    completed: bool
    completed_at: Instant | None


class RoutineRow(NamedTuple):
    id: str
    name: str
    created_at: Instant
    tasks: tuple[RoutineTaskRow, ...]


class DayRow(NamedTuple):
    day: Day
    completed_tasks: int
    total_tasks: int
    score: Decimal | None
    streak_effect: str | None  # None: closed before streak effects were recorded


class ActivityRow(NamedTuple):
    id: str
    kind: str
    message: str
    created_at: Instant


@dataclass(frozen=True)
class ExportData:
    """Everything one user's export holds; the iterables are read once, in this order."""

    exported_at: Instant
    user: UserRow
    streak: StreakRow | None
    goals: Iterable[GoalRow]
    tasks: Iterable[TaskRow]  # by creation; by plan date (inbox first) for the Markdown writer
    routines: Iterable[RoutineRow]
    history: Iterable[DayRow]
    activity: Iterable[ActivityRow]
