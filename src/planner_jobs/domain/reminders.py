"""Task reminders: when one is due, and what its notification says."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

MAX_TITLE = 500  # characters of the task's title a reminder repeats


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
    short = title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"
    return {
        "title": f"Reminder: {short}",
        "body": short,
        "tag": f"task-{task_id}",
        "data": {"taskId": str(task_id), "remindAt": remind_at.isoformat()},
    }
