"""Reminders: the tick that turns due task reminders and routine reminders into notifications."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from planner_jobs import logs
from planner_jobs.db import job_counts
from planner_jobs.db import reminders as db
from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.notifications import NO_LINKS, AppLinks, NewNotification
from planner_jobs.domain.reminders import (
    ReminderDecision,
    RoutineOutcome,
    reminder_decision,
    reminder_key,
    reminder_payload,
    routine_payload,
    routine_step,
    routine_topic,
)
from planner_jobs.jobs.notifications import raise_notifications
from planner_jobs.metrics import Metrics

events = logs.events(__name__)

# Reminders per transaction: 100,000 routine reminders due at once went out at 7,300/s in
# batches of 1,000 and 9,000/s in batches of 5,000 (bench/reminders.py).
BATCH_SIZE = 5000


@dataclass(frozen=True)
class ReminderSummary:
    sent: int
    skipped: int
    routine_sent: int = 0
    routine_skipped: int = 0  # done already, a vacation date or a day off, or too late
    unknown_zones: int = 0  # routine reminders of users whose zone is no IANA name (in UTC)

    def line(self) -> str:
        return (
            f"queued {self.sent} reminders, skipped {self.skipped} too late to send;"
            f" queued {self.routine_sent} routine reminders, skipped {self.routine_skipped}"
        )


def send_reminders(
    engine: Engine,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    links: AppLinks = NO_LINKS,
    metrics: Metrics | None = None,
    batch_size: int = BATCH_SIZE,
) -> ReminderSummary:
    """Queue the notifications of due reminders, a batch per transaction: a task is marked
    reminded in the transaction that queues its notification, so neither happens alone. A
    reminder's push lives `grace` at the push service (never shown late), and its key keeps
    a reminder queued twice from being sent twice."""
    sent = skipped = 0
    while True:
        with engine.begin() as connection:
            due = db.claim_reminders(connection, now=now, limit=batch_size)
            if not due:
                break
            sending = [
                r
                for r in due
                if reminder_decision(r.remind_at, completed=False, now=now, grace=grace)
                is ReminderDecision.SEND
            ]
            raise_notifications(
                connection,
                [
                    NewNotification(
                        user_id=r.user_id,
                        payload=links.shown(
                            reminder_payload(r.task_id, r.title, r.remind_at),
                            path=f"/tasks/{r.task_id}",
                        ),
                        topic=r.task_id.hex,
                        ttl=int(grace.total_seconds()),
                        dedupe_key=reminder_key(r.task_id, r.remind_at),
                    )
                    for r in sending
                ],
                source="reminder",
            )
            db.mark_reminded(connection, due)
        sent += len(sending)
        skipped += len(due) - len(sending)
    routine = _send_routine_reminders(
        engine, now=now, grace=grace, links=links, batch_size=batch_size
    )
    if sent + routine.sent:
        with engine.begin() as connection:
            job_counts.add(
                connection,
                queue="maintenance",
                task="reminders.sweep",
                what=job_counts.REMINDERS,
                n=sent + routine.sent,
            )
    if metrics is not None:
        metrics.reminders.labels(result="sent").inc(sent + routine.sent)
        metrics.reminders.labels(result="skipped").inc(skipped + routine.skipped)
    return ReminderSummary(
        sent=sent,
        skipped=skipped,
        routine_sent=routine.sent,
        routine_skipped=routine.skipped,
        unknown_zones=routine.unknown_zones,
    )


@dataclass
class _RoutineCounts:
    sent: int = 0
    skipped: int = 0
    unknown_zones: int = 0


def _send_routine_reminders(
    engine: Engine,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    links: AppLinks,
    batch_size: int,
) -> _RoutineCounts:
    """Routine reminders, a batch per transaction: each claimed routine task's reminder is
    decided (`routine_step`), its notification queued and its next one planned together."""
    counts = _RoutineCounts()
    while True:
        with engine.begin() as connection:
            claimed = db.claim_routine_reminders(connection, now=now, limit=batch_size)
            if not claimed:
                break
            notices, plans = [], []
            for r in claimed:
                zone = resolve_zone(r.timezone)
                step = routine_step(
                    zone=zone,
                    starts=r.day_starts_at,
                    remind_time=r.remind_time,
                    pending=r.pending,
                    completed=r.completed,
                    completed_at=r.completed_at,
                    protection=r.protection,
                    now=now,
                    grace=grace,
                )
                plans.append(db.RoutinePlan(r.task_id, step.next_day, step.next_at, r.remind_time))
                if step.outcome is RoutineOutcome.WAIT or (
                    r.pending is None and step.outcome is RoutineOutcome.LATE
                ):
                    continue  # only planned (a new reminder whose time today has passed)
                if not zone.valid:
                    counts.unknown_zones += 1
                    events.warning(
                        "unknown time zone: routine reminder in UTC",
                        user_id=str(r.user_id),
                        timezone=r.timezone,
                    )
                if step.outcome is not RoutineOutcome.SEND:
                    counts.skipped += 1
                    continue
                notices.append(
                    NewNotification(
                        user_id=r.user_id,
                        payload=links.shown(
                            routine_payload(r.task_id, r.title, step.day), path="/routines"
                        ),
                        urgency="normal",
                        topic=routine_topic(r.task_id),
                        ttl=int(grace.total_seconds()),
                        dedupe_key=f"planner-routine-{r.task_id}-{step.day.isoformat()}",
                    )
                )
            raise_notifications(connection, notices, source="reminder")
            db.plan_routine_reminders(connection, plans)
        counts.sent += len(notices)
    return counts
