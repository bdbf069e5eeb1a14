"""The content of an export, as plain values the writers consume row by row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class UserRow:
    id: str
    email: str
    timezone: str
    created_at: dt.datetime


@dataclass(frozen=True)
class StreakRow:
    current: int
    longest: int
    last_activity_date: dt.date | None


@dataclass(frozen=True)
class GoalRow:
    id: str
    title: str
    description: str | None
    target_date: dt.date | None
    completed_at: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TaskRow:
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


@dataclass(frozen=True)
class RoutineTaskRow:
    id: str
    title: str
    position: int
    completed: bool
    completed_at: dt.datetime | None


@dataclass(frozen=True)
class RoutineRow:
    id: str
    name: str
    created_at: dt.datetime
    tasks: tuple[RoutineTaskRow, ...]


@dataclass(frozen=True)
class DayRow:
    day: dt.date
    completed_tasks: int
    total_tasks: int
    score: Decimal | None


@dataclass(frozen=True)
class ActivityRow:
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
