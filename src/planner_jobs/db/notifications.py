"""The notification outbox: raising notifications through the database's own rules, and draining
them into deliveries.

Every way in (the main app's `planner_notify()`, `POST /internal/notifications`, the
`notifications.send` job, the CLI, reminders, exports) ends in the SQL function
`planner_enqueue_notification()` (migrations 0006, 0009, 0010, 0011): one place holds the
rules (user, payload size and nesting, urgency, topic, TTL, deduplication by a unique key). It
writes the row and nothing more: no NOTIFY, which would serialize the caller's commit with
every other notifying one; the workers poll the index of what waits (`jobs.intake`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from planner_jobs.db import arrays
from planner_jobs.db.models import PushDelivery
from planner_jobs.domain.notifications import NewNotification, unstorable_problem

_NEW = arrays.unnest(
    "new",
    ordinality="position",
    user_id=sa.Uuid(),
    payload=JSONB(),
    urgency=sa.Text(),
    topic=sa.Text(),
    ttl=sa.Integer(),
    dedupe_key=sa.Text(),
)
_ARGUMENTS = (
    _NEW.c.user_id,
    _NEW.c.payload,
    _NEW.c.urgency,
    _NEW.c.topic,
    _NEW.c.ttl,
    _NEW.c.dedupe_key,
)
_PROBLEMS = sa.select(_NEW.c.position, sa.func.planner_notification_problem(*_ARGUMENTS))
_ENQUEUE = sa.select(
    sa.func.planner_enqueue_notification(
        *_ARGUMENTS, sa.bindparam("source", type_=sa.Text())
    ).label("id")
).order_by(_NEW.c.position)


def _values(notifications: Sequence[NewNotification]) -> dict[str, list[Any]]:
    return arrays.values(
        user_id=[n.user_id for n in notifications],
        payload=[n.payload for n in notifications],
        urgency=[n.urgency for n in notifications],
        topic=[n.topic for n in notifications],
        ttl=[n.ttl for n in notifications],
        dedupe_key=[n.dedupe_key for n in notifications],
    )


def problems(connection: sa.Connection, notifications: Sequence[NewNotification]) -> dict[int, str]:
    """Index -> "argument: reason" for each notification the database would refuse."""
    found = {i: p for i, n in enumerate(notifications) if (p := unstorable_problem(n)) is not None}
    if found or not notifications:
        return found
    rows = connection.execute(_PROBLEMS, _values(notifications))
    return {int(position) - 1: problem for position, problem in rows if problem is not None}


def enqueue(
    connection: sa.Connection, notifications: Sequence[NewNotification], *, source: str
) -> list[int]:
    """Queue the notifications in the caller's transaction (in order, one statement): their
    ids (the earlier one's for a deduplication key repeated within 24 h). A refused one raises
    the database's error (SQLSTATE 22023, "argument: reason") and none is queued."""
    if not notifications:
        return []
    rows = connection.execute(_ENQUEUE, {**_values(notifications), "source": source})
    return [int(row.id) for row in rows]


_ENQUEUE_ONE = (
    "SELECT planner_enqueue_notification(%(user_id)s, %(payload)s, %(urgency)s, %(topic)s,"
    " %(ttl)s, %(dedupe_key)s, %(source)s) AS id"
)


class RunsQueries(Protocol):
    """What runs one query on the job engine's own pool (its connector does)."""

    async def execute_query_one_async(
        self, query: LiteralString, **arguments: Any
    ) -> dict[str, Any]: ...


async def enqueue_one(connector: RunsQueries, notification: NewNotification, *, source: str) -> int:
    """`enqueue()` of one notification, in a transaction of its own, on the job engine's own
    pool: the `notifications.send` job, whose cost per job is the way's throughput (a thread and
    a SQLAlchemy round trip cost as much again)."""
    row = await connector.execute_query_one_async(
        _ENQUEUE_ONE,
        user_id=notification.user_id,
        payload=notification.payload,
        urgency=notification.urgency,
        topic=notification.topic,
        ttl=notification.ttl,
        dedupe_key=notification.dedupe_key,
        source=source,
    )
    return int(row["id"])


@dataclass(frozen=True)
class Drained:
    claimed: int  # notifications taken from the outbox
    sending: list[int]  # those of them that got deliveries (their users have subscriptions)


# The notifications waiting in the outbox: every question about them (the drain, the workers'
# intake, a burst worker's "is anything left", the operators' counts) asks it in these words,
# which the partial index `ix_notifications_undrained` serves.
WAITING = "drained_at IS NULL"
ANY_WAITING = f"EXISTS (SELECT FROM notifications WHERE {WAITING})"


_DRAIN = sa.text(
    f"""
    WITH claimed AS (
        UPDATE notifications SET drained_at = now()
         WHERE id IN (
            SELECT id FROM notifications WHERE {WAITING}
             ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING id, user_id
    ), made AS (
        INSERT INTO push_deliveries (notification_id, subscription_id)
        SELECT claimed.id, subscription.id
          FROM claimed JOIN push_subscriptions AS subscription
            ON subscription.user_id = claimed.user_id
        ON CONFLICT DO NOTHING
        RETURNING notification_id
    )
    SELECT (SELECT count(*) FROM claimed) AS claimed,
           ARRAY(SELECT DISTINCT notification_id FROM made ORDER BY 1) AS sending
    """  # noqa: S608 (constant fragments)
)


def drain(connection: sa.Connection, *, limit: int) -> Drained:
    """Take up to `limit` waiting notifications (oldest first; others' locked ones are skipped)
    and make their deliveries, one per subscription of their user."""
    row = connection.execute(_DRAIN, {"limit": limit}).one()
    return Drained(claimed=int(row.claimed), sending=list(row.sending))


@dataclass(frozen=True)
class QuietHours:
    """A drained notification whose user keeps quiet hours (the rule decides if it waits)."""

    notification_id: int
    urgency: str
    source: str
    timezone: str
    start: dt.time
    end: dt.time


_WITH_QUIET_HOURS = sa.text(
    """
    SELECT n.id, n.urgency, n.source, u.timezone, u.quiet_hours_start, u.quiet_hours_end
      FROM notifications n JOIN users u ON u.id = n.user_id
     WHERE n.id = ANY(:ids)
       AND u.quiet_hours_start IS NOT NULL AND u.quiet_hours_end IS NOT NULL
       AND u.quiet_hours_start <> u.quiet_hours_end
    """
)


def with_quiet_hours(connection: sa.Connection, ids: Sequence[int]) -> list[QuietHours]:
    """Those of the notifications `ids` whose user set quiet hours (both bounds, not equal)."""
    return [
        QuietHours(*row)
        for row in connection.execute(
            _WITH_QUIET_HOURS.bindparams(sa.bindparam("ids", type_=ARRAY(sa.BigInteger()))),
            {"ids": list(ids)},
        )
    ]


def hold(connection: sa.Connection, until: dict[int, dt.datetime]) -> int:
    """Set the first attempt of each notification's deliveries to its instant; how many."""
    if not until:
        return 0
    held = arrays.rows(
        "held",
        notification_id=(sa.BigInteger(), list(until)),
        until=(sa.DateTime(timezone=True), list(until.values())),
    )
    result = connection.execute(
        sa.update(PushDelivery)
        .where(PushDelivery.notification_id == held.c.notification_id)
        .where(PushDelivery.status == "pending")
        .values(next_attempt_at=held.c.until)
    )
    return result.rowcount
