"""Notifications: queueing them, and delivering them to every subscription of their user.

A notification becomes one delivery record per subscription of its user. A job sends the due
deliveries of its notifications concurrently over the process's shared HTTP client, records each
outcome, deletes the subscriptions the push service reports gone, and, while some delivery still
waits for a retry, has procrastinate run it again at that moment. It ends when every delivery has
a final outcome. A delivered message is never sent again; the one window for a duplicate is a
worker dying between the push service's 201 and the next write (at most one flush of answers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import procrastinate
import sqlalchemy as sa
from procrastinate.exceptions import JobAborted
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy.engine import Engine

from planner_jobs.db import push as db
from planner_jobs.db.engine import with_reconnects
from planner_jobs.db.users import user_exists
from planner_jobs.domain.push import (
    MAX_PLAINTEXT,
    Outcome,
    classify,
    headers_problem,
    notification_id,
    retry_delay,
)
from planner_jobs.errors import PlannerError, UnknownUser
from planner_jobs.jobs.defer import defer_in_transaction
from planner_jobs.metrics import Metrics
from planner_jobs.push.encryption import PayloadTooLarge
from planner_jobs.push.sender import Answer, Message, payload_bytes
from planner_jobs.push.service import PushService

log = logging.getLogger(__name__)

IN_FLIGHT = 100  # concurrent requests per job
FLUSH_EVERY = 200  # answers recorded per write


class BadNotification(PlannerError):
    """A notification's urgency or topic would not make a valid push header."""


class RetryLater(Exception):
    """Some deliveries wait for a retry: run the job again at `at`."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__(f"deliveries pending until {at.isoformat()}")
        self.at = at


class NotificationRetry(BaseRetryStrategy):
    """Reruns a notification job when its earliest pending delivery is due, hands it back on
    shutdown, and backs off while the database is away."""

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_at=exception.at)
        if isinstance(exception, JobAborted):
            return RetryDecision(retry_in={"seconds": 0})
        if isinstance(exception, sa.exc.OperationalError) and job.attempts < 20:
            return RetryDecision(retry_in={"seconds": 30})
        return None


def check_payload(
    payload: dict[str, Any], *, urgency: str = "normal", topic: str | None = None
) -> None:
    """Refuse before sending what no push service would accept."""
    size = len(payload_bytes(payload))
    if size > MAX_PLAINTEXT:
        raise PayloadTooLarge(
            f"the notification payload is {size} bytes of JSON; at most {MAX_PLAINTEXT} fit"
        )
    problem = headers_problem(urgency, topic)
    if problem is not None:
        raise BadNotification(problem)


def queue_notification(
    engine: Engine, job_app: procrastinate.App, user_id: uuid.UUID, payload: dict[str, Any]
) -> int | None:
    """Queue `notifications.send` for a user (the CLI's `notify`); `UnknownUser` when there is
    no such user (nothing is queued)."""
    check_payload(payload)
    with engine.begin() as connection:
        if not user_exists(connection, user_id):
            raise UnknownUser(f"no user {user_id}")
        return defer_in_transaction(
            connection, job_app, "notifications.send", userId=str(user_id), payload=payload
        )


async def send_notification(
    engine: Engine,
    push: PushService,
    metrics: Metrics,
    *,
    job_id: int,
    user_id: uuid.UUID,
    payload: dict[str, Any],
    urgency: str = "normal",
    topic: str | None = None,
) -> str:
    """`notifications.send` (job `job_id`): one notification to each of a user's
    subscriptions."""
    check_payload(payload, urgency=urgency, topic=topic)
    # Derived from the job: a retried job finds the deliveries its first run created.
    notification = notification_id(f"job:{job_id}")

    def create(connection: sa.Connection) -> None:
        db.create_deliveries(
            connection, [(notification, user_id, payload)], urgency=urgency, topics=[topic]
        )

    return await deliver(engine, push, metrics, [notification], create=create)


@dataclass
class _Tally:
    delivered: int = 0
    retrying: int = 0
    rejected: int = 0
    gone: int = 0

    def line(self, notifications: int) -> str:
        return (
            f"{notifications} notification(s): {self.delivered} delivered, {self.gone} gone,"
            f" {self.rejected} rejected, {self.retrying} to retry"
        )


async def deliver(
    engine: Engine,
    push: PushService,
    metrics: Metrics,
    notifications: Sequence[uuid.UUID],
    *,
    create: Callable[[sa.Connection], None] | None = None,
) -> str:
    """Send the due deliveries of `notifications`; raise `RetryLater` while some are pending.

    `create` makes the deliveries first, in the transaction that reads them. Every instant is
    on the database's clock (workers on other machines, the cron and procrastinate's schedule
    share it): a worker whose clock ran behind would otherwise find fresh deliveries not yet
    due and reschedule itself until its clock caught up.
    """
    clock, due = await asyncio.to_thread(_due, engine, notifications, create)
    sender = push.sender()
    gate = asyncio.Semaphore(IN_FLIGHT)
    tally = _Tally()

    async def send(delivery: db.DueDelivery) -> tuple[db.DueDelivery, Answer]:
        async with gate:
            message = Message(
                endpoint=delivery.endpoint,
                p256dh=delivery.p256dh,
                auth=delivery.auth,
                payload=delivery.payload,
                urgency=delivery.urgency,
                topic=delivery.topic,
            )
            return delivery, await sender.send(message)

    pending: list[db.Recorded] = []
    gone: list[uuid.UUID] = []
    for finished in asyncio.as_completed([send(d) for d in due]):
        delivery, answer = await finished
        recorded = _outcome(delivery, answer, clock(), tally, metrics)
        if recorded is None:
            gone.append(delivery.subscription_id)
        else:
            pending.append(recorded)
        if len(pending) + len(gone) >= FLUSH_EVERY:
            await asyncio.to_thread(_write, engine, pending, gone, metrics)
            pending, gone = [], []
    next_at = await asyncio.to_thread(_write, engine, pending, gone, metrics, notifications)
    if next_at is not None:
        log.info("%s; next attempt at %s", tally.line(len(notifications)), next_at.isoformat())
        raise RetryLater(next_at)
    return tally.line(len(notifications))


def _due(
    engine: Engine, ids: Sequence[uuid.UUID], create: Callable[[sa.Connection], None] | None
) -> tuple[Callable[[], dt.datetime], list[db.DueDelivery]]:
    """The database's clock, and the deliveries due on it."""
    with engine.begin() as connection:
        if create is not None:
            create(connection)
        now = db.database_now(connection)
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
    notifications: Sequence[uuid.UUID] = (),
) -> dt.datetime | None:
    """Record answers and delete gone subscriptions; with `notifications`, also say when
    their earliest delivery still pending is due. A lost connection is tried again: the push
    services accepted these messages, and an answer not recorded is a message sent twice."""

    def write() -> tuple[int, dt.datetime | None]:
        with engine.begin() as connection:
            db.record(connection, outcomes)
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
        log.error(
            "push to subscription %s not sent: %s (endpoint %.200s)",
            delivery.subscription_id,
            answer.refused,
            delivery.endpoint,
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
        log.info(
            "subscription %s is gone (HTTP %s): deleting it",
            delivery.subscription_id,
            answer.status,
        )
        return None
    if outcome is Outcome.REJECTED:
        tally.rejected += 1
        log.error(
            "push to %s refused with HTTP %s (subscription %s kept): %s",
            host,
            answer.status,
            delivery.subscription_id,
            answer.detail,
        )
        return recorded("rejected")
    wait = retry_delay(attempts, answer.retry_after)
    if wait is None:
        tally.rejected += 1
        log.warning("push to %s failed %d times, giving up: %s", host, attempts, answer.detail)
        return recorded("failed")
    tally.retrying += 1
    return recorded("pending", next_at=now + wait)


def _host(endpoint: str) -> str:
    """The push service's host, as a metric label (`?` for what does not parse)."""
    try:
        return urlsplit(endpoint).hostname or "?"
    except ValueError:
        return "?"


@dataclass(frozen=True)
class Notification:
    id: uuid.UUID
    user_id: uuid.UUID
    payload: dict[str, Any]
    topic: str | None = None


def queue_many(
    connection: sa.Connection, job_app: procrastinate.App, notifications: Sequence[Notification]
) -> int:
    """Queue many notifications in the caller's transaction: their deliveries, and one
    `notifications.deliver` job for all of them (one job per message would cap the rate at what
    the queue can run: a few hundred jobs a second). Returns the deliveries created."""
    for notification in notifications:
        check_payload(notification.payload, topic=notification.topic)
    created = db.create_deliveries(
        connection,
        [(n.id, n.user_id, n.payload) for n in notifications],
        topics=[n.topic for n in notifications],
    )
    if created:
        defer_in_transaction(
            connection,
            job_app,
            "notifications.deliver",
            notificationIds=[str(n.id) for n in notifications],
        )
    return created


DELIVERY_RETENTION = dt.timedelta(days=7)


@dataclass(frozen=True)
class PruneSummary:
    forgotten: int

    def line(self) -> str:
        return f"forgot {self.forgotten} finished deliveries"


def prune_deliveries(engine: Engine, *, now: dt.datetime) -> PruneSummary:
    """Forget the finished delivery records of notifications older than a week."""
    with engine.begin() as connection:
        pruned = db.prune_deliveries(connection, before=now - DELIVERY_RETENTION)
    return PruneSummary(forgotten=pruned)
