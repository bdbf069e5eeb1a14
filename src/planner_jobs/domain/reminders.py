"""Task and routine reminders: when one is due, and what its notification says."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Any

from planner_jobs.domain.days import MIDNIGHT, Zone, date_at, day_start
from planner_jobs.domain.streaks import Protection

MAX_TITLE = 500  # characters of the task's title a reminder repeats
_ONE_DAY = dt.timedelta(days=1)


class ReminderDecision(enum.StrEnum):
    SEND = "send"
    SKIP = "skip"  # too late: the moment has passed
    WAIT = "wait"  # not yet


def reminder_decision(
    remind_at: dt.datetime, *, completed: bool, now: dt.datetime, grace: dt.timedelta
) -> ReminderDecision:
    """A reminder is sent once, between `remind_at` and `remind_at + grace`; a completed task
    or a later sweep skips it rather than send it late."""
    if remind_at > now:
        return ReminderDecision.WAIT
    if completed or now - remind_at > grace:
        return ReminderDecision.SKIP
    return ReminderDecision.SEND


def reminder_key(task_id: uuid.UUID, remind_at: dt.datetime) -> str:
    """The deduplication key of one reminder: the same for the same task and `remind_at`, so
    a reminder queued twice is delivered once."""
    return f"reminder:{task_id}:{remind_at.astimezone(dt.UTC).isoformat()}"


def reminder_payload(task_id: uuid.UUID, title: str, remind_at: dt.datetime) -> dict[str, Any]:
    """What the browser shows: the task's title (shortened), tagged so a newer reminder of the
    same task replaces the older one."""
    short = _shortened(title)
    return {
        "title": f"Reminder: {short}",
        "body": short,
        "tag": f"task-{task_id}",
        "data": {"taskId": str(task_id), "remindAt": remind_at.isoformat()},
    }


def _shortened(title: str) -> str:
    """A title as a reminder repeats it: at most `MAX_TITLE` characters."""
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


# --- routine reminders ------------------------------------------------------------------------


def routine_reminder_at(
    day: dt.date, zone: Zone, remind_time: dt.time, *, starts: dt.time = MIDNIGHT
) -> dt.datetime:
    """When the reminder of a routine task falls on the user's date `day` (which runs from
    `starts` to `starts` the next morning): `remind_time` on the calendar day it falls on within
    that date; where that time does not exist, the first instant after it; where it happens
    twice, the first."""
    calendar = day if remind_time >= starts else day + dt.timedelta(days=1)
    return day_start(calendar, zone, remind_time)


class RoutineOutcome(enum.StrEnum):
    SEND = "send"
    DONE = "done"  # the routine task is completed for that date already
    AWAY = "away"  # a vacation date or a day off
    LATE = "late"  # past the grace: skipped, not sent late
    WAIT = "wait"  # not yet: only (re)planned


@dataclass(frozen=True)
class RoutineStep:
    """What the reminders sweep does with one routine task: the outcome for `day` (its reminder
    at `at`), and the date and instant it plans next."""

    outcome: RoutineOutcome
    day: dt.date
    at: dt.datetime
    next_day: dt.date
    next_at: dt.datetime


def routine_step(
    *,
    zone: Zone,
    starts: dt.time,
    remind_time: dt.time,
    pending: dt.date | None,
    completed: bool,
    completed_at: dt.datetime | None,
    protection: Protection,
    now: dt.datetime,
    grace: dt.timedelta,
) -> RoutineStep:
    """One routine task whose reminder is due or not planned yet (`pending`: the date planned,
    None when the task's reminder or its user's zone or boundary changed). The instant is
    recomputed with the user's settings as they are now."""
    day, at = _reminded(
        pending if pending is not None else date_at(now, zone, starts), zone, remind_time, starts
    )
    if at > now:
        return RoutineStep(RoutineOutcome.WAIT, day, at, day, at)
    if now - at > grace:
        outcome = RoutineOutcome.LATE
    elif completed and (completed_at is None or completed_at >= day_start(day, zone, starts)):
        outcome = RoutineOutcome.DONE
    elif protection.is_vacation(day) or protection.is_day_off(day):
        outcome = RoutineOutcome.AWAY
    else:
        outcome = RoutineOutcome.SEND
    # The next date whose reminder is still ahead (or within its grace): after an outage, the
    # dates missed in between are passed over, not reminded late.
    following = max(day + _ONE_DAY, date_at(now - grace, zone, starts))
    following, next_at = _reminded(following, zone, remind_time, starts)
    while now - next_at > grace:
        following, next_at = _reminded(following + _ONE_DAY, zone, remind_time, starts)
    return RoutineStep(outcome, day, at, following, next_at)


def _reminded(
    day: dt.date, zone: Zone, remind_time: dt.time, starts: dt.time
) -> tuple[dt.date, dt.datetime]:
    """`day` and its reminder's instant, or the first date after it that has one: where the
    zone skipped a day (Samoa, 30 December 2011), a date may end before its reminder time comes
    (or last no time at all), and has no reminder."""
    while True:
        at = routine_reminder_at(day, zone, remind_time, starts=starts)
        if at < day_start(day + _ONE_DAY, zone, starts):
            return day, at
        day += _ONE_DAY


def routine_topic(routine_task_id: uuid.UUID) -> str:
    """RFC 8030 topic of a routine task's reminders: a newer one replaces an unseen older one."""
    return f"routine-{routine_task_id.hex[:24]}"


def routine_payload(routine_task_id: uuid.UUID, title: str, day: dt.date) -> dict[str, Any]:
    short = _shortened(title)
    return {
        "title": f"Routine: {short}",
        "body": f"Time for {short}",
        "tag": f"routine-{routine_task_id}",
        "data": {"routineTaskId": str(routine_task_id), "date": day.isoformat()},
    }
