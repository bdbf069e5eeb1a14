from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_jobs.domain.streaks import (
    FreezeRules,
    Protection,
    Streak,
    StreakEffect,
    effective_threshold,
    meets_goal,
    score,
    tasks_to_goal,
)
from tests.streak_model import Day, reference

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
    streak, effect = Streak().after(D, met=True)
    streak, _ = streak.after(D + dt.timedelta(1), met=True)
    assert (streak, effect) == (
        Streak(current=2, longest=2, last_activity_date=D + dt.timedelta(1)),
        StreakEffect.EXTENDED,
    )

    streak, effect = streak.after(D + dt.timedelta(2), met=False)
    assert (streak, effect) == (
        Streak(current=0, longest=2, last_activity_date=D + dt.timedelta(1)),
        StreakEffect.RESET,
    )

    streak, _ = streak.after(D + dt.timedelta(3), met=True)
    assert streak == Streak(current=1, longest=2, last_activity_date=D + dt.timedelta(3))


@given(st.lists(st.booleans(), max_size=60))
def test_longest_is_the_longest_run_of_met_days(days: list[bool]) -> None:
    streak = Streak()
    for offset, met in enumerate(days):
        streak, _ = streak.after(D + dt.timedelta(offset), met=met, rules=FreezeRules(most=0))

    runs = "".join("1" if met else "0" for met in days).split("0")
    assert streak.longest == max((len(run) for run in runs), default=0)
    assert streak.current == len(runs[-1])


SATURDAY = dt.date(2026, 3, 7)
WEEKEND = 0b110_0000  # bits 5 and 6: Saturday and Sunday


def test_a_missed_day_off_or_vacation_day_keeps_the_streak_as_it_is() -> None:
    running = Streak(current=5, longest=9, last_activity_date=SATURDAY - dt.timedelta(1))
    weekend = Protection(days_off=WEEKEND)
    away = Protection(vacation_start=SATURDAY, vacation_end=SATURDAY + dt.timedelta(9))

    assert running.after(SATURDAY, met=False, protection=weekend) == (
        running,
        StreakEffect.DAY_OFF,
    )
    assert running.after(SATURDAY - dt.timedelta(1), met=False, protection=weekend)[1] == (
        StreakEffect.RESET
    )
    assert running.after(SATURDAY + dt.timedelta(9), met=False, protection=away) == (
        running,
        StreakEffect.VACATION,
    )
    assert running.after(SATURDAY + dt.timedelta(10), met=False, protection=away)[1] == (
        StreakEffect.RESET
    )
    # A vacation on a day off says vacation (rule 2 before rule 3); a met day says extended.
    both = Protection(days_off=WEEKEND, vacation_start=SATURDAY, vacation_end=SATURDAY)
    assert running.after(SATURDAY, met=False, protection=both)[1] == StreakEffect.VACATION
    assert running.after(SATURDAY, met=True, protection=both)[1] == StreakEffect.EXTENDED


def test_a_vacation_needs_both_dates_in_order() -> None:
    assert not Protection(vacation_start=SATURDAY).is_vacation(SATURDAY)
    assert not Protection(vacation_end=SATURDAY).is_vacation(SATURDAY)
    assert not Protection(
        vacation_start=SATURDAY, vacation_end=SATURDAY - dt.timedelta(1)
    ).is_vacation(SATURDAY)


def test_freezes_are_earned_every_n_days_up_to_the_most_and_spent_on_a_missed_day() -> None:
    rules = FreezeRules(every=3, most=2)
    streak = Streak()
    for offset in range(9):
        streak, _ = streak.after(D + dt.timedelta(offset), met=True, rules=rules)
    assert (streak.current, streak.freezes) == (9, 2)  # earned at 3 and 6; at 9 two are held

    streak, effect = streak.after(D + dt.timedelta(9), met=False, rules=rules)
    assert (streak.current, streak.freezes, effect) == (9, 1, StreakEffect.FREEZE)
    streak, _ = streak.after(D + dt.timedelta(10), met=False, rules=rules)
    streak, effect = streak.after(D + dt.timedelta(11), met=False, rules=rules)
    assert (streak.current, streak.freezes, effect) == (0, 0, StreakEffect.RESET)


def test_a_freeze_is_not_spent_on_a_streak_of_zero_nor_on_a_protected_day() -> None:
    idle = Streak(current=0, freezes=2)
    assert idle.after(D, met=False) == (idle, StreakEffect.RESET)
    running = Streak(current=4, freezes=1)
    assert running.after(SATURDAY, met=False, protection=Protection(days_off=WEEKEND)) == (
        running,
        StreakEffect.DAY_OFF,
    )


def test_freezes_granted_above_the_most_are_kept_and_not_added_to() -> None:
    streak, _ = Streak(current=6, freezes=5).after(D, met=True, rules=FreezeRules(every=7))
    assert (streak.current, streak.freezes) == (7, 5)


@given(
    outcomes=st.lists(st.sampled_from(["met", "missed", "empty"]), max_size=40),
    days_off=st.integers(0, 127),
    vacation=st.one_of(st.none(), st.tuples(st.integers(0, 40), st.integers(0, 10))),
    freezes=st.integers(0, 3),
    every=st.integers(1, 8),
    most=st.integers(0, 3),
)
def test_the_rules_agree_with_the_reference_model(
    outcomes: list[str],
    days_off: int,
    vacation: tuple[int, int] | None,
    freezes: int,
    every: int,
    most: int,
) -> None:
    start = vacation and D + dt.timedelta(vacation[0])
    end = vacation and D + dt.timedelta(vacation[0] + vacation[1])
    protection = Protection(days_off=days_off, vacation_start=start, vacation_end=end)
    rules = FreezeRules(every=every, most=most)
    streak = Streak(freezes=freezes)
    effects = []
    for offset, outcome in enumerate(outcomes):
        streak, effect = streak.after(
            D + dt.timedelta(offset), met=outcome == "met", protection=protection, rules=rules
        )
        effects.append(effect.value)

    expected = reference(
        [
            Day(D + dt.timedelta(i), o, days_off, (start, end) if start and end else None)
            for i, o in enumerate(outcomes)
        ],
        freezes=freezes,
        every=every,
        most=most,
    )
    assert (effects, streak.current, streak.longest, streak.freezes) == (
        expected.effects,
        expected.current,
        expected.longest,
        expected.freezes,
    )


@given(st.integers(0, 40), st.integers(0, 40), st.integers(1, 100))
def test_tasks_to_goal_is_the_fewest_more_completions_that_meet_it(
    done: int, more: int, threshold: int
) -> None:
    total = done + more
    remaining = tasks_to_goal(done, total, threshold)
    if total == 0:
        assert remaining == 1  # nothing planned: one task, planned and done
        return
    assert meets_goal(done + remaining, total, threshold)
    assert remaining == 0 or not meets_goal(done + remaining - 1, total, threshold)
