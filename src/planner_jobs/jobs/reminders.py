"""Reminders: the tick that turns due task reminders, routine reminders and streak-at-risk
nudges into notifications."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from planner_jobs import logs
from planner_jobs.db import job_counts
from planner_jobs.db import reminders as db
from planner_jobs.domain.days import day_bounds, resolve_zone
from planner_jobs.domain.notifications import NO_LINKS, AppLinks, NewNotification
from planner_jobs.domain.reminders import (
    STREAK_RISK_TOPIC,
    NudgeOutcome,
    ReminderDecision,
    RoutineOutcome,
    daily_slot,
    reminder_decision,
    reminder_key,
    reminder_payload,
    routine_payload,
    routine_step,
    routine_topic,
    streak_at_stake,
    streak_risk_key,
    streak_risk_payload,
)
from planner_jobs.domain.streaks import effective_threshold, tasks_to_goal
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
    unknown_zones: int = 0  # routine reminders and nudges of users whose zone is no IANA name
    streak_sent: int = 0  # streak-at-risk nudges
    streak_skipped: int = 0  # goal met, no streak, a vacation date or a day off, or too late

    def line(self) -> str:
        return (
            f"queued {self.sent} reminders, skipped {self.skipped} too late to send;"
            f" queued {self.routine_sent} routine reminders, skipped {self.routine_skipped};"
            f" queued {self.streak_sent} streak nudges, skipped {self.streak_skipped}"
        )


def send_reminders(
    engine: Engine,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    links: AppLinks = NO_LINKS,
    default_threshold: int = 75,
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
    # Routine reminders and streak nudges lock different rows (routine tasks, users): on two
    # connections at once, each waits on the database while the other decides.
    with ThreadPoolExecutor(2, thread_name_prefix="reminders") as pool:
        routine_run = pool.submit(
            _send_routine_reminders,
            engine,
            now=now,
            grace=grace,
            links=links,
            batch_size=batch_size,
        )
        streak_run = pool.submit(
            _send_streak_nudges,
            engine,
            now=now,
            grace=grace,
            links=links,
            default_threshold=default_threshold,
            batch_size=batch_size,
        )
        routine, streak = routine_run.result(), streak_run.result()
    raised = sent + routine.sent + streak.sent
    if raised:
        with engine.begin() as connection:
            job_counts.add(
                connection,
                queue="maintenance",
                task="reminders.sweep",
                what=job_counts.REMINDERS,
                n=raised,
            )
    if metrics is not None:
        metrics.reminders.labels(result="sent").inc(raised)
        metrics.reminders.labels(result="skipped").inc(skipped + routine.skipped + streak.skipped)
    return ReminderSummary(
        sent=sent,
        skipped=skipped,
        routine_sent=routine.sent,
        routine_skipped=routine.skipped,
        unknown_zones=routine.unknown_zones + streak.unknown_zones,
        streak_sent=streak.sent,
        streak_skipped=streak.skipped,
    )


@dataclass
class _Counts:
    sent: int = 0
    skipped: int = 0
    unknown_zones: int = 0

    def unknown_zone(self, what: str, user_id: uuid.UUID, timezone: str) -> None:
        """A user whose zone is no IANA name: handled in UTC, counted and reported."""
        self.unknown_zones += 1
        events.warning(f"unknown time zone: {what} in UTC", user_id=str(user_id), timezone=timezone)


def _send_routine_reminders(
    engine: Engine,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    links: AppLinks,
    batch_size: int,
) -> _Counts:
    """Routine reminders, a batch per transaction: each claimed routine task's reminder is
    decided (`routine_step`), its notification queued and its next one planned together."""
    counts = _Counts()
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
                    counts.unknown_zone("routine reminder", r.user_id, r.timezone)
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


def _send_streak_nudges(
    engine: Engine,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    links: AppLinks,
    default_threshold: int,
    batch_size: int,
) -> _Counts:
    """Streak-at-risk nudges, a batch per transaction: each claimed user's nudge is placed in
    time (`daily_slot`); where the streak is at stake, the day's tasks are counted (one
    statement for the batch) and the nudge queued unless the goal is met; the next one planned."""
    counts = _Counts()
    while True:
        with engine.begin() as connection:
            claimed = db.claim_streak_nudges(connection, now=now, limit=batch_size)
            if not claimed:
                break
            plans, at_stake = [], []
            for user in claimed:
                zone = resolve_zone(user.timezone)
                slot = daily_slot(
                    zone=zone,
                    starts=user.day_starts_at,
                    remind_time=user.remind_time,
                    pending=user.pending,
                    now=now,
                    grace=grace,
                )
                plans.append(
                    db.NudgePlan(user.user_id, slot.next_day, slot.next_at, user.remind_time)
                )
                outcome = streak_at_stake(slot, streak=user.streak, protection=user.protection)
                if outcome is NudgeOutcome.WAIT or (
                    user.pending is None and outcome is NudgeOutcome.LATE
                ):
                    continue  # only planned (a new nudge whose time today has passed)
                if not zone.valid:
                    counts.unknown_zone("streak nudge", user.user_id, user.timezone)
                if outcome is not NudgeOutcome.SEND:
                    counts.skipped += 1
                    continue
                start, end = day_bounds(slot.day, zone, user.day_starts_at)
                at_stake.append((user, db.OpenDay(user.user_id, slot.day, start, end)))
            tallies = db.tally_days(connection, [day for _, day in at_stake])
            notices = []
            for user, day in at_stake:
                tally = tallies.get(user.user_id, db.Tally())
                threshold = effective_threshold(user.streak_threshold, default_threshold)
                remaining = tasks_to_goal(tally.completed, tally.total, threshold)
                if remaining == 0:
                    counts.skipped += 1  # the goal is met so far
                    continue
                notices.append(
                    NewNotification(
                        user_id=user.user_id,
                        payload=links.shown(
                            streak_risk_payload(
                                day.day, streak=user.streak, remaining=remaining, total=tally.total
                            ),
                            path="/streak",
                        ),
                        urgency="normal",
                        topic=STREAK_RISK_TOPIC,
                        # Worth showing until the date closes, not after.
                        ttl=max(0, int((day.end - now).total_seconds())),
                        dedupe_key=streak_risk_key(day.day),
                    )
                )
            raise_notifications(connection, notices, source="streak")
            db.plan_streak_nudges(connection, plans)
        counts.sent += len(notices)
    return counts
