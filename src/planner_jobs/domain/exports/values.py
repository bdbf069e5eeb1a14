"""How values are written in every export format."""

from __future__ import annotations

import datetime as dt

from planner_jobs.domain.days import Zone


def iso_instant(value: dt.datetime | None, zone: Zone) -> str | None:
    """ISO 8601 in the user's zone, with its offset (None stays None)."""
    if value is None:
        return None
    if value.tzinfo is not zone.tzinfo:  # the reader usually hands them over in the zone
        value = value.astimezone(zone.tzinfo)
    return value.isoformat()


def iso_date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()
