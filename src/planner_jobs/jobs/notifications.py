"""Notifications: raising them (every way in), and delivering them to every subscription of
their user.

Raising one only writes it to the outbox (`notifications`), through the database's own rules
(`db.notifications`), in the caller's transaction; the workers drain the outbox into deliveries,
a batch per job (`jobs.outbox`). A delivery job sends the due deliveries of its notifications
concurrently over the process's shared HTTP client, records each outcome, deletes the
subscriptions the push service reports gone, and, while some delivery still waits for a retry,
has procrastinate run it again at that moment. It ends when every delivery has a final outcome.
A delivered message is never sent again; the one window for a duplicate is a worker dying
between the push service's 201 and the next write (at most one flush of answers).

A push service that hangs holds up no one else: each has its own connection slots (`push.http`),
a job waits `PushService.patience` for an answer and then leaves the request to finish on its
own (its delivery waits meanwhile, and its answer is recorded when it comes: `_record_late`),
and a job back for its retries runs behind fresh ones (`RETRY_PRIORITY`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs import logs
from planner_jobs.db import job_counts
from planner_jobs.db import notifications as outbox
from planner_jobs.db import push as db
from planner_jobs.db.engine import database_now, with_reconnects
from planner_jobs.domain.notifications import (
    NewNotification,
    compact_json_text,
    unstorable_problem,
)
from planner_jobs.domain.push import Outcome, classify, retry_delay
from planner_jobs.engine.context import QueryFailed, Rescheduled
from planner_jobs.errors import PlannerError
from planner_jobs.metrics import Metrics

if TYPE_CHECKING:
    from planner_jobs.push.sender import Answer, Message
    from planner_jobs.push.service import PushService

log = logging.getLogger(__name__)
events = logs.events(__name__)

IN_FLIGHT = 100  # concurrent requests per job
FLUSH_EVERY = 200  # answers recorded per write
REFUSED = "22023"  # SQLSTATE of planner_enqueue_notification's refusals (invalid_parameter_value)
NO_NUL = ("22P05", "22021")  # jsonb and text refusing U+0000


class BadNotification(PlannerError):
    """The database's rules refuse the notification (the message says which argument, why)."""


class RetryLater(Rescheduled):
    """Some deliveries wait for a retry: run the job again at `at`."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__(at, f"deliveries pending until {at.isoformat()}")


def raise_notifications(
    connection: sa.Connection, notifications: Sequence[NewNotification], *, source: str
) -> list[int]:
    """Queue notifications in the caller's transaction; their ids. `BadNotification` when the
    database refuses one (and then the transaction is not usable: roll it back)."""
    for notification in notifications:
        if (problem := unstorable_problem(notification)) is not None:
            raise BadNotification(problem)
    try:
        return outbox.enqueue(connection, notifications, source=source)
    except sa.exc.DBAPIError as exc:
        raise _refusal(exc.orig) or exc from None


def _refusal(error: BaseException | None) -> BadNotification | None:
    """The database's refusal of a notification, as ours (None: another error)."""
    if isinstance(error, psycopg.Error) and error.sqlstate == REFUSED:
        return BadNotification(error.diag.message_primary or str(error))
    if isinstance(error, psycopg.Error) and error.sqlstate in NO_NUL:
        return BadNotification("a value must not hold the character U+0000")
    return None


class RefusedNotifications(PlannerError):
    """Some notifications of a batch break the database's rules: none was queued."""

    def __init__(self, problems: dict[int, str]) -> None:
        super().__init__("; ".join(f"[{i}] {problem}" for i, problem in sorted(problems.items())))
        self.problems = problems  # index in the batch -> "argument: reason"


def raise_all_or_nothing(
    engine: Engine, notifications: Sequence[NewNotification], *, source: str
) -> list[int]:
    """Queue every notification of the batch in one transaction, or none: the database's rules
    are asked about each first, and `RefusedNotifications` says which break which rule."""
    with engine.begin() as connection:
        problems = outbox.problems(connection, notifications)
        if problems:
            raise RefusedNotifications(problems)
        return raise_notifications(connection, notifications, source=source)


def notify(engine: Engine, notification: NewNotification, *, source: str) -> int:
    """Queue one notification in a transaction of its own (the CLI's `notify`)."""
    with engine.begin() as connection:
        [notification_id] = raise_notifications(connection, [notification], source=source)
    return notification_id


async def send_notification(
    connector: outbox.RunsQueries, *, job_id: int, notification: NewNotification
) -> int:
    """The `notifications.send` job (`{"userId", "payload"}`, and optional `urgency`, `topic`,
    `ttl`, `dedupeKey`): into the outbox, like every other way in, on the job engine's own pool;
    the notification's id. Without a key of its own, the job's id is its deduplication key: a
    job retried after it queued sends nothing twice."""
    if (problem := unstorable_problem(notification)) is not None:
        raise BadNotification(problem)
    if notification.dedupe_key is None:
        notification = dataclasses.replace(notification, dedupe_key=f"planner-job:{job_id}")
    try:
        return await outbox.enqueue_one(connector, notification, source="job")
    except QueryFailed as exc:
        raise _refusal(exc.__cause__) or exc from None


@dataclass
class _Tally:
    delivered: int = 0
    retrying: int = 0
    rejected: int = 0
    gone: int = 0
    awaiting: int = 0  # sent, their answer still on its way when the job moved on

    def line(self, notifications: int) -> str:
        awaiting = f", {self.awaiting} awaiting an answer" if self.awaiting else ""
        return (
            f"{notifications} notification(s): {self.delivered} delivered, {self.gone} gone,"
            f" {self.rejected} rejected, {self.retrying} to retry{awaiting}"
        )


async def deliver(
    engine: Engine, push: PushService, metrics: Metrics, notifications: Sequence[int]
) -> str:
    """Send the due deliveries of `notifications`; raise `RetryLater` while some are pending.

    Every instant is on the database's clock (workers on other machines, the cron and
    procrastinate's schedule share it): a worker whose clock ran behind would otherwise find
    fresh deliveries not yet due and reschedule itself until its clock caught up.
    """
    clock, due = await asyncio.to_thread(_due, engine, notifications)
    sender = push.sender()
    gate = asyncio.Semaphore(IN_FLIGHT)
    tally = _Tally()
    late: list[tuple[db.DueDelivery, asyncio.Future[Answer]]] = []

    async def send(delivery: db.DueDelivery) -> tuple[db.DueDelivery, Answer | None]:
        """The answer, or None when it is still on its way after the job's patience."""
        async with gate:
            request = asyncio.ensure_future(sender.send(_message(delivery)))
            try:
                return delivery, await asyncio.wait_for(asyncio.shield(request), push.patience)
            except TimeoutError:
                late.append((delivery, request))
                return delivery, None

    pending: list[db.Recorded] = []
    gone: list[uuid.UUID] = []
    for finished in asyncio.as_completed([send(d) for d in due]):
        delivery, answer = await finished
        if answer is None:  # not sent again before its request is certainly over
            tally.awaiting += 1
            hold = clock() + dt.timedelta(seconds=push.late_limit + 1)
            pending.append(_awaiting(delivery, until=hold))
        elif (recorded := _outcome(delivery, answer, clock(), tally, metrics)) is None:
            gone.append(delivery.subscription_id)
        else:
            pending.append(recorded)
        if len(pending) + len(gone) >= FLUSH_EVERY:
            await asyncio.to_thread(_write, engine, pending, gone, metrics)
            pending, gone = [], []
    next_at = await asyncio.to_thread(_write, engine, pending, gone, metrics, notifications)
    if late:
        hosts = sorted({_host(delivery.endpoint) for delivery, _ in late})
        events.info(
            "pushes unanswered: left to finish on their own",
            pushes=len(late),
            patience_seconds=push.patience,
            hosts=hosts,
        )
        push.keep(
            _record_late(engine, metrics, clock, late, limit=push.late_limit),
            name=f"late push answers ({len(late)})",
        )
    if next_at is not None:
        events.info(
            "deliveries pending",
            summary=tally.line(len(notifications)),
            next_at=next_at.isoformat(),
        )
        raise RetryLater(next_at)
    return tally.line(len(notifications))


def _message(delivery: db.DueDelivery) -> Message:
    from planner_jobs.push.sender import Message  # the worker's, not every importer's, cost

    return Message(
        endpoint=delivery.endpoint,
        p256dh=delivery.p256dh,
        auth=delivery.auth,
        body=compact_json_text(delivery.body),  # stored as PostgreSQL renders it
        urgency=delivery.urgency,
        topic=delivery.topic,
        ttl=delivery.ttl,
    )


def _awaiting(delivery: db.DueDelivery, *, until: dt.datetime) -> db.Recorded:
    """A delivery whose request is out: pending, not due again before `until`."""
    return db.Recorded(
        notification_id=delivery.notification_id,
        subscription_id=delivery.subscription_id,
        status="pending",
        attempts=delivery.attempts,
        next_attempt_at=until,
        last_status=None,
        last_error="sent; the push service has not answered yet",
        delivered_at=None,
    )


async def _record_late(
    engine: Engine,
    metrics: Metrics,
    clock: Callable[[], dt.datetime],
    late: Sequence[tuple[db.DueDelivery, asyncio.Future[Answer]]],
    *,
    limit: float,
) -> None:
    """Wait for the answers a job did not wait for (each at most `limit` seconds more) and
    record them as the job would have. A request given up on counts as a timed-out attempt."""
    from planner_jobs.push.sender import Answer

    async def answer_of(
        delivery: db.DueDelivery, request: asyncio.Future[Answer]
    ) -> tuple[db.DueDelivery, Answer]:
        try:
            return delivery, await asyncio.wait_for(request, limit)
        except TimeoutError:
            return delivery, Answer(None, None, f"timed out (no answer in {limit:.0f} s)", limit)

    tally = _Tally()
    pending: list[db.Recorded] = []
    gone: list[uuid.UUID] = []
    try:
        for finished in asyncio.as_completed([answer_of(d, r) for d, r in late]):
            delivery, answer = await finished
            recorded = _outcome(delivery, answer, clock(), tally, metrics)
            if recorded is None:
                gone.append(delivery.subscription_id)
            else:
                pending.append(recorded)
            if len(pending) + len(gone) >= FLUSH_EVERY:
                await asyncio.to_thread(_write, engine, pending, gone, metrics)
                pending, gone = [], []
        await asyncio.to_thread(_write, engine, pending, gone, metrics)
    except Exception:  # their deliveries stay pending, and are sent again when due
        log.exception("could not record the answers that came after their job")
        return
    events.info("late push answers", summary=tally.line(len({d.notification_id for d, _ in late})))


def _due(
    engine: Engine, ids: Sequence[int]
) -> tuple[Callable[[], dt.datetime], list[db.DueDelivery]]:
    """The database's clock, and the deliveries due on it."""
    with engine.begin() as connection:
        now = database_now(connection)
        due = db.due_deliveries(connection, ids, now=now)
    read_at = time.monotonic()

    def clock() -> dt.datetime:
        return now + dt.timedelta(seconds=time.monotonic() - read_at)

    return clock, due


def _write(
    engine: Engine,
    outcomes: list[db.Recorded],
    gone: list[uuid.UUID],
    metrics: Metrics,
    notifications: Sequence[int] = (),
) -> dt.datetime | None:
    """Record answers and delete gone subscriptions; with `notifications`, also say when
    their earliest delivery still pending is due. A lost connection is tried again: the push
    services accepted these messages, and an answer not recorded is a message sent twice."""

    delivered = sum(1 for outcome in outcomes if outcome.status == "delivered")

    def write() -> tuple[int, dt.datetime | None]:
        with engine.begin() as connection:
            db.record(connection, outcomes)
            job_counts.add(
                connection,
                queue="notifications",
                task="notifications.deliver",
                what=job_counts.DELIVERED,
                n=delivered,
            )
            deleted = db.delete_subscriptions(connection, gone)
            next_at = db.next_attempt(connection, notifications) if notifications else None
        return deleted, next_at

    deleted, next_at = with_reconnects(write)
    metrics.subscriptions_deleted.inc(deleted)
    return next_at


def _outcome(
    delivery: db.DueDelivery, answer: Answer, now: dt.datetime, tally: _Tally, metrics: Metrics
) -> db.Recorded | None:
    """The record to write for an answer received at `now`; None: delete the subscription."""
    host = _host(delivery.endpoint)
    attempts = delivery.attempts + 1

    def recorded(
        status: str, *, next_at: dt.datetime = now, delivered_at: dt.datetime | None = None
    ) -> db.Recorded:
        return db.Recorded(
            notification_id=delivery.notification_id,
            subscription_id=delivery.subscription_id,
            status=status,
            attempts=attempts,
            next_attempt_at=next_at,
            last_status=answer.status,
            last_error=None if status == "delivered" else answer.detail,
            delivered_at=delivered_at,
        )

    if answer.refused is not None:
        # Never requested: the endpoint is not one we may push to. Final for this delivery;
        # the subscription is kept (an allowlist changed by mistake must not delete them all).
        metrics.pushes.labels(outcome="refused", status="none", host=host).inc()
        tally.rejected += 1
        events.error(
            "push not sent: endpoint refused",
            subscription_id=str(delivery.subscription_id),
            reason=answer.refused,
            endpoint=delivery.endpoint[:200],
        )
        return recorded("rejected")
    outcome = classify(answer.status)
    metrics.pushes.labels(
        outcome=outcome.value, status=str(answer.status or "none"), host=host
    ).inc()
    metrics.push_seconds.labels(host=host).observe(answer.seconds)

    if outcome is Outcome.DELIVERED:
        tally.delivered += 1
        return recorded("delivered", delivered_at=now)
    if outcome is Outcome.GONE:
        tally.gone += 1
        events.info(
            "subscription gone: deleting it",
            subscription_id=str(delivery.subscription_id),
            host=host,
            status=answer.status,
        )
        return None
    if outcome is Outcome.REJECTED:
        tally.rejected += 1
        events.error(
            "push refused",
            host=host,
            status=answer.status,
            subscription_id=str(delivery.subscription_id),
            detail=answer.detail,
        )
        return recorded("rejected")
    wait = retry_delay(attempts, answer.retry_after)
    if wait is None:
        tally.rejected += 1
        events.warning("push failed: giving up", host=host, attempts=attempts, detail=answer.detail)
        return recorded("failed")
    tally.retrying += 1
    return recorded("pending", next_at=now + wait)


def _host(endpoint: str) -> str:
    """The push service's host, as a metric label (`?` for what does not parse)."""
    try:
        return urlsplit(endpoint).hostname or "?"
    except ValueError:
        return "?"


NOTIFICATION_RETENTION = dt.timedelta(days=7)


@dataclass(frozen=True)
class NotificationsForgotten:
    forgotten: int

    def line(self) -> str:
        return f"forgot {self.forgotten} finished notifications"


# Notifications forgotten per transaction: 300,000 of them (and their deliveries) in one held
# their rows for 2.6 s; batches of 5,000 hold them 0.1-0.3 s at most (bench/history.py).
PRUNE_BATCH_SIZE = 5000


def prune_notifications(
    engine: Engine, *, now: dt.datetime, batch_size: int = PRUNE_BATCH_SIZE
) -> NotificationsForgotten:
    """Forget the notifications of more than a week ago whose deliveries are all finished, a
    batch per transaction, oldest first."""
    forgotten, after = 0, 0
    while True:
        with engine.begin() as connection:
            batch = db.prune_notifications(
                connection, before=now - NOTIFICATION_RETENTION, after=after, limit=batch_size
            )
        forgotten += batch.pruned
        if batch.next_after is None:
            return NotificationsForgotten(forgotten=forgotten)
        after = batch.next_after
