"""The workers' side of the notification outbox: draining it into delivery jobs.

Each process working the notifications queue finds what waits through its intake
(`jobs.intake`, a poll of the outbox's partial index) and drains it here: oldest first, `SKIP
LOCKED` (several processes share the work), into deliveries and one `notifications.deliver` job
per batch, in one transaction. Idle, a message goes out alone within a poll; under load the
intake pauses briefly after each drain and the batches grow, so the job engine's cost per job
(a few milliseconds) is paid per batch, not per message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.db import notifications as db
from planner_jobs.db.engine import database_now
from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.quiet_hours import quiet_until, sent_at_once
from planner_jobs.engine.defer import JobApp, defer_in_transaction
from planner_jobs.metrics import Metrics

log = logging.getLogger(__name__)

BATCH = 1000  # notifications per drain, and per delivery job


@dataclass(frozen=True)
class DrainSummary:
    claimed: int
    sending: int  # notifications that got deliveries
    held: int = 0  # deliveries waiting for the end of their user's quiet hours

    def line(self) -> str:
        held = f" ({self.held} deliveries held for quiet hours)" if self.held else ""
        return f"drained {self.claimed} notifications, {self.sending} to send{held}"


def drain_outbox(
    engine: Engine,
    job_app: JobApp,
    *,
    limit: int = BATCH,
    metrics: Metrics | None = None,
) -> DrainSummary:
    """Turn up to `limit` waiting notifications into deliveries and one delivery job, in one
    transaction (so a crash loses neither). The deliveries of a notification raised inside its
    user's quiet hours first fall due when they end (`domain.quiet_hours`); the delivery job
    reschedules itself until then."""
    with engine.begin() as connection:
        drained = db.drain(connection, limit=limit)
        held = 0
        if drained.sending:
            held = _hold_for_quiet_hours(connection, drained.sending)
            defer_in_transaction(
                connection, job_app, "notifications.deliver", notificationIds=drained.sending
            )
    if metrics is not None and held:
        metrics.push_held.inc(held)
    return DrainSummary(claimed=drained.claimed, sending=len(drained.sending), held=held)


def _hold_for_quiet_hours(connection: sa.Connection, notification_ids: list[int]) -> int:
    candidates = db.with_quiet_hours(connection, notification_ids)
    if not candidates:
        return 0
    now = database_now(connection)
    until = {}
    for candidate in candidates:
        if sent_at_once(urgency=candidate.urgency, source=candidate.source):
            continue
        end = quiet_until(now, resolve_zone(candidate.timezone), candidate.start, candidate.end)
        if end is not None:
            until[candidate.notification_id] = end
    return db.hold(connection, until)


def drain_all(engine: Engine, job_app: JobApp, *, metrics: Metrics | None = None) -> int:
    """Drain until nothing waits; how many were drained."""
    total = 0
    while (drained := drain_outbox(engine, job_app, metrics=metrics)).claimed:
        total += drained.claimed
        if drained.claimed < BATCH:
            break
    return total
