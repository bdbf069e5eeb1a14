"""A reference model of the contract's day boundary (`users.day_starts_at`), written apart from
`domain.days`: a date's start found by walking the clock a minute at a time, and a day's score
by counting what happened inside it."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

MINUTE = dt.timedelta(minutes=1)


@lru_cache(maxsize=4096)
def start(day: dt.date, zone: str, boundary: dt.time) -> dt.datetime:
    """The first instant (UTC, to the minute) whose wall-clock reading in `zone` is at or past
    `day` at `boundary`: that time where it exists (its first occurrence where it happens twice),
    else the first instant after it that does."""
    wanted = dt.datetime.combine(day, boundary)
    tz = ZoneInfo(zone)
    # 15 hours before the wall time read as UTC, every zone's clock still reads earlier.
    instant = wanted.replace(tzinfo=dt.UTC) - dt.timedelta(hours=15)
    while instant.astimezone(tz).replace(tzinfo=None) < wanted:
        instant += MINUTE
    return instant


def date_of(instant: dt.datetime, zone: str, boundary: dt.time) -> dt.date:
    """The date whose [start, next start) holds `instant`."""
    day = instant.astimezone(ZoneInfo(zone)).date() + dt.timedelta(days=1)
    while start(day, zone, boundary) > instant:
        day -= dt.timedelta(days=1)
    return day


def closed_days(
    created_at: dt.datetime, final: dt.datetime, zone: str, boundary: dt.time
) -> list[tuple[dt.date, dt.datetime, dt.datetime]]:
    """Each date due by `final` from the user's first one, with its [start, end)."""
    day = date_of(created_at, zone, boundary)
    days = []
    while (end := start(day + dt.timedelta(days=1), zone, boundary)) <= final:
        days.append((day, start(day, zone, boundary), end))
        day += dt.timedelta(days=1)
    return days


def history(
    days: list[tuple[dt.date, dt.datetime, dt.datetime]],
    plan_tasks: dict[dt.date, list[dt.datetime | None]],
    routine_tasks: list[dt.datetime | None],
) -> list[tuple[str, int, int]]:
    """(date, completed, total) of each closed date, when nothing carries over: a plan task
    counts for its plan's date, done if completed before the date's end; every routine task
    counts each date, done on the date whose bounds hold its completion."""
    rows = []
    for day, begins, ends in days:
        plan = plan_tasks.get(day, [])
        done = sum(1 for at in plan if at is not None and at < ends)
        done += sum(1 for at in routine_tasks if at is not None and begins <= at < ends)
        rows.append((day.isoformat(), done, len(plan) + len(routine_tasks)))
    return rows
