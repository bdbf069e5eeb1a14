"""Quiet hours: a window of the user's local wall-clock time (it may wrap midnight) during which
their notifications wait, sent when it ends.

What waits: every notification but those of urgency `high` and task reminders (the user chose
their time). The window is read in the user's zone at the moment the notification is turned
into deliveries; its end is the first instant the wall clock reads the end time: where that time
happens twice (clocks set back) the occurrence still ahead, where it does not happen (clocks set
forward over it) the instant of the jump.
"""

from __future__ import annotations

import datetime as dt

from planner_jobs.domain.days import Zone, require_aware

UTC = dt.UTC
_ONE_DAY = dt.timedelta(days=1)
_ONE_SECOND = dt.timedelta(seconds=1)


def sent_at_once(*, urgency: str, source: str) -> bool:
    """Whether a notification goes out whatever the hour: urgent ones and task reminders."""
    return urgency == "high" or source == "reminder"


def quiet_until(
    now: dt.datetime, zone: Zone, start: dt.time | None, end: dt.time | None
) -> dt.datetime | None:
    """When the quiet hours holding `now` end (UTC), or None when `now` is outside them or the
    user has none (both bounds are needed; equal bounds are no window)."""
    require_aware(now)
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone.tzinfo)
    wall = local.time().replace(tzinfo=None)
    wraps = start > end
    inside = (wall >= start or wall < end) if wraps else start <= wall < end
    if not inside:
        return None
    end_day = local.date() + (_ONE_DAY if wraps and wall >= start else dt.timedelta(0))
    first, second = wall_clock_reads(end_day, end, zone)
    # On the night clocks are set back, the wall clock may read a time before `end` a second
    # time after passing it once: the window then ends at the occurrence still ahead.
    return first if first > now else second


def wall_clock_reads(day: dt.date, time: dt.time, zone: Zone) -> tuple[dt.datetime, dt.datetime]:
    """The first and the last instant (UTC) at which the wall clock on `day` reads `time` (the
    same instant unless the clocks are set back over it); where the clocks jump over `time`,
    the instant of the jump, twice."""
    naive = dt.datetime.combine(day, time)
    before = naive.replace(tzinfo=zone.tzinfo, fold=0).astimezone(UTC)
    after = naive.replace(tzinfo=zone.tzinfo, fold=1).astimezone(UTC)
    if before <= after:
        return before, after
    # In a gap, fold=0 reads `time` with the offset before the jump and lands after it; fold=1
    # with the offset after the jump and lands before it. The jump lies between: find it.
    low, high = after, before
    offset_after_jump = high.astimezone(zone.tzinfo).utcoffset()
    while high - low > _ONE_SECOND:
        middle = low + (high - low) / 2
        if middle.astimezone(zone.tzinfo).utcoffset() == offset_after_jump:
            high = middle
        else:
            low = middle
    jump = high.replace(microsecond=0)
    if jump.astimezone(zone.tzinfo).utcoffset() != offset_after_jump:
        jump += _ONE_SECOND
    return jump, jump
