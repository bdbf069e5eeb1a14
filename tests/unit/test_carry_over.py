from __future__ import annotations

import datetime as dt

import pytest

from planner_jobs.domain.carry_over import (
    CarryOver,
    carried_to,
    plan_task_done,
    routine_task_done,
)

START = dt.datetime(2026, 3, 7, 5, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC)
JUST_BEFORE_END = END - dt.timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("completed", "completed_at", "done"),
    [
        (False, None, False),
        (True, None, True),
        (True, START - dt.timedelta(days=3), True),  # done early still counts
        (True, JUST_BEFORE_END, True),
        (True, END, False),  # completed after midnight: not on this day
        (False, JUST_BEFORE_END, False),
    ],
)
def test_a_plan_task_counts_when_completed_before_the_day_ended(
    completed: bool, completed_at: dt.datetime | None, done: bool
) -> None:
    assert plan_task_done(completed, completed_at, END) is done


@pytest.mark.parametrize(
    ("completed", "completed_at", "done"),
    [
        (True, None, True),
        (True, START, True),
        (True, JUST_BEFORE_END, True),
        (True, START - dt.timedelta(microseconds=1), False),
        (True, END, False),  # after midnight: keeps its state for the next day
        (False, START, False),
    ],
)
def test_a_routine_task_counts_when_completed_inside_the_day(
    completed: bool, completed_at: dt.datetime | None, done: bool
) -> None:
    assert routine_task_done(completed, completed_at, START, END) is done


@pytest.mark.parametrize(
    ("mode", "done", "destination"),
    [
        (CarryOver.NEXT_DAY, False, CarryOver.NEXT_DAY),
        (CarryOver.INBOX, False, CarryOver.INBOX),
        (CarryOver.NONE, False, None),
        (CarryOver.NEXT_DAY, True, None),
        (CarryOver.INBOX, True, None),
    ],
)
def test_only_unfinished_tasks_move_and_only_where_the_user_said(
    mode: CarryOver, done: bool, destination: CarryOver | None
) -> None:
    assert carried_to(mode, done=done) is destination
