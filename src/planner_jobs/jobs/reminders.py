"""Task reminders: the tick that turns due reminders into notifications."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from planner_jobs.db import job_counts
from planner_jobs.db import reminders as db
from planner_jobs.domain.notifications import NO_LINKS, AppLinks, NewNotification
from planner_jobs.domain.reminders import (
    ReminderDecision,
    reminder_decision,
    reminder_key,
    reminder_payload,
)
from planner_jobs.jobs.notifications import raise_notifications
from planner_jobs.metrics import Metrics

BATCH_SIZE = 1000  # reminders per transaction


@dataclass(frozen=True)
class ReminderSummary:
    sent: int
    skipped: int

    def line(self) -> str:
        return f"queued {self.sent} reminders, skipped {self.skipped} too late to send"


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
    if sent:
        with engine.begin() as connection:
            job_counts.add(
                connection,
                queue="maintenance",
                task="reminders.sweep",
                what=job_counts.REMINDERS,
                n=sent,
            )
    if metrics is not None:
        metrics.reminders.labels(result="sent").inc(sent)
        metrics.reminders.labels(result="skipped").inc(skipped)
    return ReminderSummary(sent=sent, skipped=skipped)
