"""A reference model of the contract's five streak rules, written apart from the domain code
(a plain loop over named outcomes) so that tests can compare the two."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Day:
    date: dt.date
    outcome: str  # "met", "missed" (tasks, goal not reached) or "empty" (no task at all)
    days_off: int = 0  # the user's settings as they were when the day was closed
    vacation: tuple[dt.date, dt.date] | None = None


@dataclass
class Expected:
    effects: list[str] = field(default_factory=list)
    current: int = 0
    longest: int = 0
    freezes: int = 0
    last_activity: dt.date | None = None
    freezes_spent_on: list[dt.date] = field(default_factory=list)


def reference(
    days: list[Day], *, freezes: int, every: int, most: int, current: int = 0
) -> Expected:
    state = Expected(current=current, longest=current, freezes=freezes)
    for day in days:
        weekday_off = (day.days_off & (1 << day.date.weekday())) != 0
        away = day.vacation is not None and day.vacation[0] <= day.date <= day.vacation[1]
        if day.outcome == "met":
            state.current += 1
            state.longest = max(state.longest, state.current)
            state.last_activity = day.date
            if state.current % every == 0 and state.freezes < most:
                state.freezes += 1
            state.effects.append("extended")
        elif away:
            state.effects.append("vacation")
        elif weekday_off:
            state.effects.append("day_off")
        elif state.current > 0 and state.freezes > 0:
            state.freezes -= 1
            state.freezes_spent_on.append(day.date)
            state.effects.append("freeze")
        else:
            state.current = 0
            state.effects.append("reset")
    return state
