"""Scoring a closed day and carrying the streak forward, with the protections users set: days
off, a vacation, and freezes earned by long streaks and spent on a missed day."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
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


def tasks_to_goal(completed: int, total: int, threshold: int) -> int:
    """How many more of the day's tasks must be completed for it to meet the goal (the
    rollover's rule: total > 0 and completed * 100 >= threshold * total); 0 when it does. A day
    with nothing planned needs one task, planned and done."""
    if total <= 0:
        return 1
    return max(0, -((100 * completed - threshold * total) // 100))


def effective_threshold(user_threshold: int | None, default: int) -> int:
    """The user's own threshold when set, else the configured one."""
    return default if user_threshold is None else user_threshold


class StreakEffect(enum.StrEnum):
    """What closing a day did to the streak (`performance_history.streak_effect`)."""

    EXTENDED = "extended"
    VACATION = "vacation"
    DAY_OFF = "day_off"
    FREEZE = "freeze"
    RESET = "reset"


@dataclass(frozen=True)
class Protection:
    """What the user set to keep a missed day from breaking the streak, as it is when the day is
    closed: weekdays off (a bit mask, bit 0 = Monday) and a vacation (inclusive local dates; it
    needs both, and a start after the end is none)."""

    days_off: int = 0
    vacation_start: dt.date | None = None
    vacation_end: dt.date | None = None

    def is_day_off(self, day: dt.date) -> bool:
        return bool(self.days_off >> day.weekday() & 1)

    def is_vacation(self, day: dt.date) -> bool:
        start, end = self.vacation_start, self.vacation_end
        return start is not None and end is not None and start <= day <= end


@dataclass(frozen=True)
class FreezeRules:
    """A freeze is earned each time the streak reaches a multiple of `every` days, while fewer
    than `most` are held (PLANNER_FREEZE_EVERY, PLANNER_FREEZE_MAX)."""

    every: int = 7
    most: int = 2


NO_PROTECTION = Protection()
DEFAULT_FREEZE_RULES = FreezeRules()


@dataclass(frozen=True)
class Streak:
    current: int = 0
    longest: int = 0
    last_activity_date: dt.date | None = None
    freezes: int = 0

    def after(
        self,
        day: dt.date,
        *,
        met: bool,
        protection: Protection = NO_PROTECTION,
        rules: FreezeRules = DEFAULT_FREEZE_RULES,
    ) -> tuple[Streak, StreakEffect]:
        """The streak once `day` is closed, and what happened to it: the first rule that applies.

        1. met: extended (and a freeze earned at each multiple of `rules.every`, up to `most`);
        2. not met on a vacation day, 3. or on a day off: unchanged;
        4. not met, a streak running and a freeze held: the freeze is spent, the streak kept;
        5. otherwise (an empty day too): reset.
        """
        if met:
            current = self.current + 1
            earned = current % rules.every == 0 and self.freezes < rules.most
            return Streak(
                current=current,
                longest=max(self.longest, current),
                last_activity_date=day,
                freezes=self.freezes + earned,
            ), StreakEffect.EXTENDED
        if protection.is_vacation(day):
            return self, StreakEffect.VACATION
        if protection.is_day_off(day):
            return self, StreakEffect.DAY_OFF
        if self.current > 0 and self.freezes > 0:
            return replace(self, freezes=self.freezes - 1), StreakEffect.FREEZE
        return replace(self, current=0), StreakEffect.RESET


def freeze_notice(day: dt.date, streak: Streak) -> dict[str, str]:
    """What the browser shows when a freeze kept the streak through a missed `day`."""
    left = f"{streak.freezes} freeze{'s' if streak.freezes != 1 else ''} left"
    return {
        "title": "Streak freeze used",
        "body": (
            f"You missed {day:%A} {day.day} {day:%B}; a freeze kept your"
            f" {streak.current}-day streak. {left}."
        ),
        "tag": "streak-freeze",
    }
