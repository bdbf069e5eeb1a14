"""The workers' side of the notification outbox: draining it into delivery jobs.

`planner_enqueue_notification()` NOTIFYs `planner_notifications` when the transaction that
raised a notification commits. Each process working the notifications queue keeps a `Relay`
listening on that channel: on a wake-up it drains what waits (oldest first, `SKIP LOCKED`, so
several processes share the work) into deliveries and one `notifications.deliver` job per batch,
in one transaction. A wake-up arrives after the commit, so the drain that follows it sees the
notification: nothing waits for a poll. Idle, a message goes out alone at once; under load the
relay pauses briefly after each drain and the batches grow, so the job engine's cost per job
(a few milliseconds) is paid per batch, not per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import procrastinate
import psycopg
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import Engine

from planner_jobs.db import notifications as db
from planner_jobs.db.engine import connect_kwargs, database_now, libpq_url_of
from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.quiet_hours import quiet_until, sent_at_once
from planner_jobs.jobs.defer import defer_in_transaction
from planner_jobs.metrics import Metrics

log = logging.getLogger(__name__)

BATCH = 1000  # notifications per drain, and per delivery job
PAUSE_AFTER_DRAIN = 0.15  # seconds: what arrives meanwhile joins the next batch
SAFETY_DRAIN_SECONDS = 30.0  # a drain even without a wake-up (one lost while reconnecting)
LISTEN_CHECK_SECONDS = 10.0  # how long a silent listening connection goes unchecked


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
    job_app: procrastinate.App,
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


def drain_all(engine: Engine, job_app: procrastinate.App, *, metrics: Metrics | None = None) -> int:
    """Drain until nothing waits; how many were drained."""
    total = 0
    while (drained := drain_outbox(engine, job_app, metrics=metrics)).claimed:
        total += drained.claimed
        if drained.claimed < BATCH:
            break
    return total


class Relay:
    """Listens for raised notifications and drains them, until cancelled."""

    def __init__(
        self, engine: Engine, job_app: procrastinate.App, metrics: Metrics | None = None
    ) -> None:
        self._engine = engine
        self._job_app = job_app
        self._metrics = metrics
        self._wake = asyncio.Event()

    async def run(self) -> None:
        listening = asyncio.create_task(self._listen(), name="outbox listener")
        try:
            await self._drain_when_woken()
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    async def _drain_when_woken(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=SAFETY_DRAIN_SECONDS)
            self._wake.clear()
            try:
                drained = await asyncio.to_thread(
                    drain_outbox, self._engine, self._job_app, metrics=self._metrics
                )
            except Exception:  # the database is away: the next wake-up or safety drain retries
                log.warning("could not drain the notification outbox", exc_info=True)
                await asyncio.sleep(1)
                continue
            if drained.claimed >= BATCH:
                self._wake.set()  # more waits
            elif drained.claimed:
                await asyncio.sleep(PAUSE_AFTER_DRAIN)

    async def _listen(self) -> None:
        conninfo = libpq_url_of(self._engine)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    make_conninfo(conninfo, **connect_kwargs("planner-jobs relay")),
                    autocommit=True,
                ) as connection:
                    await connection.execute(f"LISTEN {db.CHANNEL}")
                    self._wake.set()  # what was raised while nobody listened
                    while True:
                        async for _ in connection.notifies(timeout=LISTEN_CHECK_SECONDS):
                            self._wake.set()
                        await connection.execute("SELECT 1")  # still there?
            except psycopg.OperationalError as exc:
                log.warning("the outbox listener lost its connection (%s): reconnecting", exc)
                await asyncio.sleep(1)
