from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_jobs.domain.streaks import Streak, effective_threshold, meets_goal, score

D = dt.date(2026, 3, 7)


@pytest.mark.parametrize(
    ("completed", "total", "expected"),
    [
        (0, 0, None),
        (0, 4, Decimal("0.00")),
        (1, 3, Decimal("33.33")),
        (2, 3, Decimal("66.67")),
        (1, 8, Decimal("12.50")),
        (1, 16, Decimal("6.25")),
        (1, 32, Decimal("3.13")),  # 3.125 rounds half up
        (10, 10, Decimal("100.00")),
    ],
)
def test_score_is_a_percentage_to_two_decimals(
    completed: int, total: int, expected: Decimal | None
) -> None:
    assert score(completed, total) == expected


@pytest.mark.parametrize(
    ("completed", "total", "threshold", "met"),
    [
        (3, 4, 75, True),
        (2, 3, 67, False),  # 66.666...% < 67%
        (2, 3, 66, True),
        (0, 0, 1, False),  # an empty day never meets the goal
        (1, 1, 100, True),
        (0, 5, 1, False),
    ],
)
def test_the_goal_compares_exact_fractions(
    completed: int, total: int, threshold: int, met: bool
) -> None:
    assert meets_goal(completed, total, threshold) is met


def test_the_user_threshold_overrides_the_setting() -> None:
    assert effective_threshold(None, 75) == 75
    assert effective_threshold(50, 75) == 50


def test_a_met_day_extends_the_streak_and_a_missed_day_resets_it() -> None:
    streak = Streak()
    streak = streak.after(D, met=True).after(D + dt.timedelta(1), met=True)
    assert streak == Streak(current=2, longest=2, last_activity_date=D + dt.timedelta(1))

    streak = streak.after(D + dt.timedelta(2), met=False)
    assert streak == Streak(current=0, longest=2, last_activity_date=D + dt.timedelta(1))

    streak = streak.after(D + dt.timedelta(3), met=True)
    assert streak == Streak(current=1, longest=2, last_activity_date=D + dt.timedelta(3))


@given(st.lists(st.booleans(), max_size=60))
def test_longest_is_the_longest_run_of_met_days(days: list[bool]) -> None:
    streak = Streak()
    for offset, met in enumerate(days):
        streak = streak.after(D + dt.timedelta(offset), met=met)

    runs = "".join("1" if met else "0" for met in days).split("0")
    assert streak.longest == max((len(run) for run in runs), default=0)
    assert streak.current == len(runs[-1])
