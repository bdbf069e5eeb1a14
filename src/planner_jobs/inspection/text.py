"""The views' instants and durations for people, the same in the CLI and the dashboard."""

from __future__ import annotations

import datetime as dt

NOTHING = "-"


def duration(seconds: float | None) -> str:
    """`42.0 s`, `3.5 min`, `2.1 h`, `1.2 d`; `-` for none."""
    if seconds is None:
        return NOTHING
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def ago(instant: dt.datetime | None, now: dt.datetime) -> str:
    """`3.5 min ago`, or `20.0 s from now`; `-` for none."""
    if instant is None:
        return NOTHING
    seconds = (now - instant).total_seconds()
    return duration(seconds) + (" ago" if seconds >= 0 else " from now")
