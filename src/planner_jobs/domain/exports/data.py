"""The content of an export, as plain values the writers consume row by row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

SCHEMA_VERSION = 1

# The rows are named tuples: a large export makes a million of them, and a tuple is the cheapest
# typed value Python builds (ids arrive as text).


class UserRow(NamedTuple):
    id: str
    email: str
    timezone: str
    created_at: dt.datetime


class StreakRow(NamedTuple):
    current: int
    longest: int
    last_activity_date: dt.date | None


class GoalRow(NamedTuple):
    id: str
    title: str
    description: str | None
    target_date: dt.date | None
    completed_at: dt.datetime | None
    created_at: dt.datetime


class TaskRow(NamedTuple):
    id: str
    title: str
    notes: str | None
    completed: bool
    completed_at: dt.datetime | None
    due_at: dt.datetime | None
    remind_at: dt.datetime | None
    plan_date: dt.date | None  # None: in the inbox
    goal_id: str | None
    created_at: dt.datetime


class RoutineTaskRow(NamedTuple):
    id: str
    title: str
    position: int
    completed: bool
    completed_at: dt.datetime | None


class RoutineRow(NamedTuple):
    id: str
    name: str
    created_at: dt.datetime
    tasks: tuple[RoutineTaskRow, ...]


class DayRow(NamedTuple):
    day: dt.date
    completed_tasks: int
    total_tasks: int
    score: Decimal | None


class ActivityRow(NamedTuple):
    id: str
    kind: str
    message: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ExportData:
    """Everything one user's export holds; the iterables are read once, in this order."""

    exported_at: dt.datetime
    user: UserRow
    streak: StreakRow | None
    goals: Iterable[GoalRow]
    tasks: Iterable[TaskRow]  # ordered by plan date (inbox first), then creation
    routines: Iterable[RoutineRow]
    history: Iterable[DayRow]
    activity: Iterable[ActivityRow]
