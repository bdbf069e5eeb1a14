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


class Timing(enum.StrEnum):
    """Where a daily reminder stands at the sweep's `now`."""

    DUE = "due"  # its instant has come, within the grace
    LATE = "late"  # past the grace: skipped, not sent late
    WAIT = "wait"  # not yet: only (re)planned


@dataclass(frozen=True)
class DailySlot:
    """A daily reminder at a local time (a routine task's, the streak nudge): where the one of
    `day` (at `at`) stands, and the date and instant planned next."""

    timing: Timing
    day: dt.date
    at: dt.datetime
    next_day: dt.date
    next_at: dt.datetime


def daily_slot(
    *,
    zone: Zone,
    starts: dt.time,
    remind_time: dt.time,
    pending: dt.date | None,
    now: dt.datetime,
    grace: dt.timedelta,
) -> DailySlot:
    """The daily reminder at `remind_time` that is due or not planned yet (`pending`: the date
    planned, None when the reminder's time changed or it was never planned). The instant is
    recomputed with the user's zone and boundary as they are now."""
    day, at = _reminded(
        pending if pending is not None else date_at(now, zone, starts), zone, remind_time, starts
    )
    if at > now:
        return DailySlot(Timing.WAIT, day, at, day, at)
    # The next date whose reminder is still ahead (or within its grace): after an outage, the
    # dates missed in between are passed over, not reminded late.
    following = max(day + _ONE_DAY, date_at(now - grace, zone, starts))
    following, next_at = _reminded(following, zone, remind_time, starts)
    while now - next_at > grace:
        following, next_at = _reminded(following + _ONE_DAY, zone, remind_time, starts)
    timing = Timing.LATE if now - at > grace else Timing.DUE
    return DailySlot(timing, day, at, following, next_at)


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
    None when the task's reminder changed). The instant is recomputed with the user's settings
    as they are now."""
    slot = daily_slot(
        zone=zone, starts=starts, remind_time=remind_time, pending=pending, now=now, grace=grace
    )
    day = slot.day
    if slot.timing is Timing.WAIT:
        outcome = RoutineOutcome.WAIT
    elif slot.timing is Timing.LATE:
        outcome = RoutineOutcome.LATE
    elif completed and (completed_at is None or completed_at >= day_start(day, zone, starts)):
        outcome = RoutineOutcome.DONE
    elif protection.is_vacation(day) or protection.is_day_off(day):
        outcome = RoutineOutcome.AWAY
    else:
        outcome = RoutineOutcome.SEND
    return RoutineStep(outcome, day, slot.at, slot.next_day, slot.next_at)


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


# --- the streak-at-risk nudge -----------------------------------------------------------------

STREAK_RISK_TOPIC = "streak-risk"


class NudgeOutcome(enum.StrEnum):
    SEND = "send"  # the streak is at stake: count the day's tasks, nudge unless the goal is met
    MET = "met"  # the day meets the goal so far
    NO_STREAK = "no_streak"  # no streak to lose
    AWAY = "away"  # a vacation date or a day off: a missed day keeps the streak
    LATE = "late"  # past the grace: skipped, not sent late
    WAIT = "wait"  # not yet: only (re)planned


def streak_at_stake(slot: DailySlot, *, streak: int, protection: Protection) -> NudgeOutcome:
    """Whether the streak-at-risk nudge of `slot.day` goes on to count the day's tasks (SEND),
    or why not. A missed vacation date or day off keeps the streak, so it is not at risk."""
    if slot.timing is Timing.WAIT:
        return NudgeOutcome.WAIT
    if slot.timing is Timing.LATE:
        return NudgeOutcome.LATE
    if streak <= 0:
        return NudgeOutcome.NO_STREAK
    if protection.is_vacation(slot.day) or protection.is_day_off(slot.day):
        return NudgeOutcome.AWAY
    return NudgeOutcome.SEND


def streak_risk_key(day: dt.date) -> str:
    """One nudge per user and date, however often it is raised."""
    return f"planner-streak-risk-{day.isoformat()}"


def streak_risk_payload(day: dt.date, *, streak: int, remaining: int, total: int) -> dict[str, Any]:
    """What the browser shows: the streak at stake and the tasks that keep it."""
    tasks = f"{remaining} more task{'s' if remaining != 1 else ''}"
    body = (
        f"Complete {tasks} today to keep it going."
        if total > 0
        else "Nothing is planned today: plan a task and complete it to keep it going."
    )
    return {
        "title": f"Your {streak}-day streak is at risk",
        "body": body,
        "tag": STREAK_RISK_TOPIC,
        "data": {"date": day.isoformat(), "streak": streak, "tasksRemaining": remaining},
    }
