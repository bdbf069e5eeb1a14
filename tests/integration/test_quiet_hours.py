"""Quiet hours end to end: a notification raised inside its user's quiet hours reaches the push
service only when they end; urgent ones and task reminders go at once; the held delivery shows
as waiting to operators and is counted."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.notifications import NewNotification
from planner_jobs.domain.quiet_hours import quiet_until
from planner_jobs.inspection import views
from planner_jobs.jobs.notifications import notify
from planner_jobs.runtime import Runtime
from tests.integration.conftest import new_user, subscribe, time_passes, work
from tests.push_receiver import PushReceiver

ZONE = "Asia/Kathmandu"  # +5:45: a window computed in UTC would be off by a quarter hour


def quiet_around_now(runtime: Runtime, user: uuid.UUID) -> tuple[dt.time, dt.time]:
    """Quiet hours from an hour ago to two hours ahead, on the user's wall clock (a window
    that may wrap midnight)."""
    local = dt.datetime.now(dt.UTC).astimezone(resolve_zone(ZONE).tzinfo)
    start = (local - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + dt.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    with runtime.engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE users SET timezone = :z, quiet_hours_start = :s, quiet_hours_end = :e"
                " WHERE id = :u"
            ),
            {"z": ZONE, "s": start, "e": end, "u": user},
        )
    return start, end


def raise_as(runtime: Runtime, user: uuid.UUID, title: str, source: str, **options: str) -> None:
    notify(runtime.engine, NewNotification(user, {"title": title}, **options), source=source)


def test_a_notification_in_quiet_hours_waits_for_their_end_and_urgent_ones_do_not(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    start, end = quiet_around_now(push_runtime, user)

    raise_as(push_runtime, user, "later", "http")
    raise_as(push_runtime, user, "urgent", "http", urgency="high")
    raise_as(push_runtime, user, "reminder", "reminder")
    raise_as(push_runtime, user, "freeze", "rollover", urgency="low", topic="streak-freeze")
    drained_at = dt.datetime.now(dt.UTC)
    work(push_runtime)

    assert sorted(p["title"] for p in receiver.payloads("phone")) == ["reminder", "urgent"]
    with push_runtime.engine.connect() as c:
        held = c.execute(
            sa.text(
                "SELECT n.body::jsonb->>'title' AS title, d.next_attempt_at, d.attempts"
                " FROM push_deliveries d JOIN notifications n ON n.id = d.notification_id"
                " WHERE d.status = 'pending' ORDER BY 1"
            )
        ).all()
        waiting = views.deliveries(c)
    expected_end = quiet_until(drained_at, resolve_zone(ZONE), start, end)
    assert expected_end is not None
    assert [(row.title, row.attempts) for row in held] == [("freeze", 0), ("later", 0)]
    for row in held:
        assert abs(row.next_attempt_at - expected_end) < dt.timedelta(seconds=5)
    assert waiting.waiting == 2
    held_count = push_runtime.metrics.registry.get_sample_value("planner_jobs_push_held_total")
    assert held_count == 2

    time_passes(push_runtime)  # the window ends
    work(push_runtime)

    assert sorted(p["title"] for p in receiver.payloads("phone")) == [
        "freeze",
        "later",
        "reminder",
        "urgent",
    ]
    ttls = {r.headers["ttl"] for r in receiver.received if r.name == "phone"}
    assert ttls == {"3600"}  # counted from the send, as given: never shortened by the wait


def test_outside_quiet_hours_or_without_them_nothing_waits(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    local = dt.datetime.now(dt.UTC).astimezone(resolve_zone(ZONE).tzinfo)
    with push_runtime.engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE users SET timezone = :z, quiet_hours_start = :s, quiet_hours_end = :e"
                " WHERE id = :u"
            ),
            {
                "z": ZONE,
                "s": (local + dt.timedelta(hours=2)).time(),
                "e": (local + dt.timedelta(hours=3)).time(),
                "u": user,
            },
        )

    raise_as(push_runtime, user, "now", "http")
    work(push_runtime)

    assert [p["title"] for p in receiver.payloads("phone")] == ["now"]
