"""The nightly prune of notifications: what is forgotten, what is kept, a batch per transaction."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.jobs.notifications import prune_notifications
from tests.data import add_subscription, add_user, utc

NOW = utc("2026-06-10T03:53")
OLD = NOW - dt.timedelta(days=8)
RECENT = NOW - dt.timedelta(days=1)


def raise_one(
    connection: sa.Connection,
    user: object,
    subscription: object,
    *,
    at: dt.datetime,
    delivery: str | None = "delivered",
    drained: bool = True,
) -> int:
    notification: int = connection.execute(
        sa.text(
            "INSERT INTO notifications (user_id, body, created_at, drained_at)"
            " VALUES (:u, '{}', :at, :drained) RETURNING id"
        ),
        {"u": user, "at": at, "drained": at if drained else None},
    ).scalar_one()
    if delivery is not None:
        connection.execute(
            sa.text(
                "INSERT INTO push_deliveries (notification_id, subscription_id, status)"
                " VALUES (:n, :s, :status)"
            ),
            {"n": notification, "s": subscription, "status": delivery},
        )
    return notification


@pytest.mark.parametrize("batch_size", [3, 5000])
def test_finished_notifications_of_more_than_a_week_ago_are_forgotten_with_their_deliveries(
    engine: Engine, batch_size: int
) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=OLD - dt.timedelta(days=1))
        subscription = add_subscription(c, user, "https://push.example/1", p256dh="k", auth="a")
        old = [
            raise_one(c, user, subscription, at=OLD, delivery=status)
            for status in (
                "delivered",
                "rejected",
                "failed",
                "delivered",
                None,
                "delivered",
                "failed",
            )
        ]
        pending = raise_one(c, user, subscription, at=OLD, delivery="pending")
        undrained = raise_one(c, user, subscription, at=OLD, delivery=None, drained=False)
        recent = [raise_one(c, user, subscription, at=RECENT) for _ in range(2)]

    summary = prune_notifications(engine, now=NOW, batch_size=batch_size)

    assert summary.forgotten == len(old)
    with engine.connect() as c:
        kept = set(c.scalars(sa.text("SELECT id FROM notifications")))
        deliveries = set(c.scalars(sa.text("SELECT notification_id FROM push_deliveries")))
    assert kept == {pending, undrained, *recent}
    assert deliveries == {pending, *recent}


def test_the_prune_stops_after_the_first_batch_that_reaches_the_last_week(engine: Engine) -> None:
    """Ids follow arrival: past the first batch holding a notification of the last week, none is
    read (one committed late with an old `created_at` waits for the next night)."""
    with engine.begin() as c:
        user = add_user(c, created_at=OLD - dt.timedelta(days=1))
        subscription = add_subscription(c, user, "https://push.example/1", p256dh="k", auth="a")
        first = [raise_one(c, user, subscription, at=OLD) for _ in range(2)]
        raise_one(c, user, subscription, at=RECENT)
        beside_it = raise_one(c, user, subscription, at=OLD)  # in the batch of the recent one
        beyond = [raise_one(c, user, subscription, at=OLD) for _ in range(3)]

    summary = prune_notifications(engine, now=NOW, batch_size=2)

    assert summary.forgotten == len(first) + 1
    with engine.connect() as c:
        old = set(
            c.scalars(
                sa.text("SELECT id FROM notifications WHERE created_at < :cut"),
                {"cut": NOW - dt.timedelta(days=7)},
            )
        )
    assert old == set(beyond)
    assert beside_it not in old
