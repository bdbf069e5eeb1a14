"""Local days in IANA time zones: their bounds, and which of them are due to be closed.

A local date `D` is the half-open interval `[start(D), start(D+1))` of instants whose local date
in the zone is `D`. `start(D)` is the first instant of `D`: local midnight, or where midnight does
not exist that day (a DST gap), the first instant that does; where midnight happens twice, the
first of the two. A day is therefore 23, 23.5, 24 or 25 hours long, never assumed to be 24.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
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
def day_start(day: dt.date, zone: Zone) -> dt.datetime:
    """The first instant (UTC) whose local date is `day`.

    `fold=0` resolves a nonexistent midnight with the offset in force before the gap, which lands
    on the first instant after it, and an ambiguous midnight to its first occurrence.
    """
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone.tzinfo).astimezone(UTC)


def day_bounds(day: dt.date, zone: Zone) -> tuple[dt.datetime, dt.datetime]:
    """`[start, end)` of `day` in UTC; `end` is the start of the next day."""
    return day_start(day, zone), day_start(day + _ONE_DAY, zone)


def due_at(day: dt.date, zone: Zone) -> dt.datetime:
    """When `day` becomes due to be closed: the first instant of the next day."""
    return day_start(day + _ONE_DAY, zone)


def first_date(created_at: dt.datetime, zone: Zone) -> dt.date:
    """The first date to close for a user: the local date they were created on."""
    return local_date(created_at, zone)


def due_dates(
    next_date: dt.date, now: dt.datetime, zone: Zone, *, limit: int | None = None
) -> list[dt.date]:
    """The dates from `next_date` on that are due at `now`, in order (at most `limit` of them)."""
    require_aware(now)
    dates: list[dt.date] = []
    day = next_date
    while (limit is None or len(dates) < limit) and day < dt.date.max and due_at(day, zone) <= now:
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


def days_to_close(
    *,
    timezone: str,
    created_at: dt.datetime,
    next_date: dt.date | None,
    now: dt.datetime,
    limit: int | None = None,
) -> DaysToClose:
    """The dates to close for a user at `now`, starting at `next_date` (or, for a user never
    rolled over, the local date of `created_at`), counted in their current zone.

    A zone change moves when the open date becomes due, never which date it is: no date is closed
    twice or skipped.
    """
    zone = resolve_zone(timezone)
    first = next_date if next_date is not None else first_date(created_at, zone)
    days = due_dates(first, now, zone, limit=limit)
    open_date = days[-1] + _ONE_DAY if days else first
    return DaysToClose(
        zone=zone, days=days, next_date=open_date, next_due_at=due_at(open_date, zone)
    )
