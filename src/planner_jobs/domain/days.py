"""Local days in IANA time zones: their bounds, and which of them are due to be closed.

A local date `D` is the half-open interval `[start(D), start(D+1))` of instants. `start(D)` is
the first instant of `D` at the user's boundary (`users.day_starts_at`, midnight unless they
set a later time, up to 11:59: a night owl's day ends at 04:00 the next morning): that wall-clock
time on `D`, or where it does not exist that day (a DST gap), the first instant after it that
does; where it happens twice, the first of the two. A day is therefore 23, 23.5, 24 or 25 hours
long (0 for a date a zone skipped), never assumed to be 24.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
MIDNIGHT = dt.time(0)
_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Zone:
    """The zone a user's days are counted in: their IANA name, or UTC when it is not one."""

    name: str
    tzinfo: dt.tzinfo
    valid: bool


@lru_cache(maxsize=1024)
def resolve_zone(name: str) -> Zone:
    """`name` as a zone; an unknown or malformed name falls back to UTC with `valid=False`."""
    try:
        return Zone(name=name, tzinfo=ZoneInfo(name), valid=True)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return Zone(name=name, tzinfo=UTC, valid=False)


def require_aware(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: an instant needs a UTC offset")
    return instant


def local_date(instant: dt.datetime, zone: Zone) -> dt.date:
    """The date on the user's calendar at `instant`."""
    return require_aware(instant).astimezone(zone.tzinfo).date()


@lru_cache(maxsize=8192)  # a sweep asks for the same few (day, zone) pairs thousands of times
def day_start(day: dt.date, zone: Zone, starts: dt.time = MIDNIGHT) -> dt.datetime:
    """The first instant (UTC) of `day` at the boundary `starts` (local wall-clock time).

    `fold=0` resolves an ambiguous time to its first occurrence. A nonexistent one (in a gap)
    resolved with the offset in force before the gap lands as far past the gap's end as it was
    past its start: the gap's end, the first instant that exists after it, is found instead.
    """
    wall = dt.datetime.combine(day, starts, tzinfo=zone.tzinfo)
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone.tzinfo).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    return _gap_end(wall, zone)


def _gap_end(wall: dt.datetime, zone: Zone) -> dt.datetime:
    """The first instant at or after the nonexistent wall time `wall`: where the clocks land
    when they jump over it (found by bisection between its two readings, to the second)."""
    low = wall.replace(fold=1).astimezone(UTC)  # read with the later offset: before the jump
    high = wall.replace(fold=0).astimezone(UTC)  # read with the earlier one: after it
    naive = wall.replace(tzinfo=None)
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone.tzinfo).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def day_bounds(
    day: dt.date, zone: Zone, starts: dt.time = MIDNIGHT
) -> tuple[dt.datetime, dt.datetime]:
    """`[start, end)` of `day` in UTC; `end` is the start of the next day."""
    return day_start(day, zone, starts), day_start(day + _ONE_DAY, zone, starts)


def due_at(day: dt.date, zone: Zone, starts: dt.time = MIDNIGHT) -> dt.datetime:
    """When `day` becomes due to be closed: the first instant of the next day."""
    return day_start(day + _ONE_DAY, zone, starts)


def date_at(instant: dt.datetime, zone: Zone, starts: dt.time = MIDNIGHT) -> dt.date:
    """The user's date at `instant`: the `D` with `start(D) <= instant < start(D+1)`."""
    wall = require_aware(instant).astimezone(zone.tzinfo)
    day = (wall - dt.timedelta(hours=starts.hour, minutes=starts.minute)).date()
    while day_start(day, zone, starts) > instant:
        day -= _ONE_DAY
    while day_start(day + _ONE_DAY, zone, starts) <= instant:
        day += _ONE_DAY
    return day


def first_date(created_at: dt.datetime, zone: Zone, starts: dt.time = MIDNIGHT) -> dt.date:
    """The first date to close for a user: their date when they were created."""
    return date_at(created_at, zone, starts)


def due_dates(
    next_date: dt.date,
    now: dt.datetime,
    zone: Zone,
    *,
    starts: dt.time = MIDNIGHT,
    limit: int | None = None,
) -> list[dt.date]:
    """The dates from `next_date` on that are due at `now`, in order (at most `limit` of them)."""
    require_aware(now)
    dates: list[dt.date] = []
    day = next_date
    while (
        (limit is None or len(dates) < limit)
        and day < dt.date.max
        and due_at(day, zone, starts) <= now
    ):
        dates.append(day)
        day += _ONE_DAY
    return dates


@dataclass(frozen=True)
class DaysToClose:
    """A user's rollover work at some instant, and where it leaves their calendar."""

    zone: Zone
    days: list[dt.date]  # due now, in order
    next_date: dt.date  # the first date still open once `days` are closed
    next_due_at: dt.datetime  # when `next_date` becomes due
    starts: dt.time = MIDNIGHT  # the boundary the dates were counted at


def days_to_close(
    *,
    timezone: str,
    created_at: dt.datetime,
    next_date: dt.date | None,
    now: dt.datetime,
    starts: dt.time = MIDNIGHT,
    limit: int | None = None,
) -> DaysToClose:
    """The dates to close for a user at `now`, starting at `next_date` (or, for a user never
    rolled over, their date when they were created), counted in their current zone at their
    current boundary `starts`.

    A change of zone or boundary moves when the open date becomes due, never which date it is:
    no date is closed twice or skipped.
    """
    zone = resolve_zone(timezone)
    first = next_date if next_date is not None else first_date(created_at, zone, starts)
    days = due_dates(first, now, zone, starts=starts, limit=limit)
    open_date = days[-1] + _ONE_DAY if days else first
    return DaysToClose(
        zone=zone,
        days=days,
        next_date=open_date,
        next_due_at=due_at(open_date, zone, starts),
        starts=starts,
    )
