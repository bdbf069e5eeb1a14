"""Task reminders: once per value of `remind_at`, within the grace period, never late."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from planner_jobs.jobs.reminders import ReminderSummary, send_reminders
from planner_jobs.runtime import Runtime
from tests.data import add_task
from tests.integration.conftest import new_user, subscribe, work
from tests.push_receiver import PushReceiver

NOW = dt.datetime(2026, 3, 8, 9, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(minutes=15)


def remind(runtime: Runtime, now: dt.datetime = NOW, **options: int) -> ReminderSummary:
    return send_reminders(runtime.engine, now=now, grace=GRACE, **options)


def task_with_reminder(
    runtime: Runtime,
    user: uuid.UUID,
    remind_at: dt.datetime,
    title: str = "Call the dentist",
    **extra: object,
) -> uuid.UUID:
    with runtime.engine.begin() as c:
        return add_task(c, user, None, title=title, remind_at=remind_at, **extra)


def test_a_due_reminder_is_sent_once_naming_its_task(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    task = task_with_reminder(push_runtime, user, NOW - dt.timedelta(minutes=1))

    first = remind(push_runtime)
    second = remind(push_runtime, NOW + dt.timedelta(minutes=1))
    work(push_runtime)

    assert (first.sent, first.skipped, second.sent) == (1, 0, 0)
    [payload] = receiver.payloads("phone")
    assert payload["title"] == "Reminder: Call the dentist"
    assert payload["data"]["taskId"] == str(task)
    assert receiver.received[0].headers["topic"] == task.hex
    assert receiver.errors == []


@pytest.mark.parametrize(
    ("remind_at", "completed", "sent", "skipped"),
    [
        (NOW, False, 1, 0),  # exactly now
        (NOW - GRACE, False, 1, 0),  # the last moment still worth it
        (NOW - GRACE - dt.timedelta(seconds=1), False, 0, 1),  # too late: skipped, not sent late
        (NOW + dt.timedelta(seconds=1), False, 0, 0),  # not yet
        (NOW - dt.timedelta(minutes=1), True, 0, 0),  # done already
    ],
)
def test_reminders_at_their_boundaries(
    push_runtime: Runtime,
    receiver: PushReceiver,
    remind_at: dt.datetime,
    completed: bool,
    sent: int,
    skipped: int,
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    task_with_reminder(push_runtime, user, remind_at, completed=completed)

    summary = remind(push_runtime)
    work(push_runtime)

    assert (summary.sent, summary.skipped) == (sent, skipped)
    assert len(receiver.payloads("phone")) == sent
    assert remind(push_runtime).sent == 0  # handled once


def test_a_new_remind_at_arms_a_new_reminder(push_runtime: Runtime, receiver: PushReceiver) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    task = task_with_reminder(push_runtime, user, NOW - dt.timedelta(minutes=2))
    remind(push_runtime)
    later = NOW + dt.timedelta(hours=1)
    with push_runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE tasks SET remind_at = :r WHERE id = :t"), {"r": later, "t": task})

    assert remind(push_runtime, later).sent == 1
    work(push_runtime)
    assert len(receiver.payloads("phone")) == 2


def test_two_ticks_at_once_send_each_reminder_once(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    for n in range(60):
        task_with_reminder(push_runtime, user, NOW - dt.timedelta(seconds=n), title=f"task {n}")
    results: list[ReminderSummary] = []
    barrier = threading.Barrier(2)

    def tick() -> None:
        barrier.wait()
        results.append(remind(push_runtime, batch_size=7))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    work(push_runtime)

    assert sum(r.sent for r in results) == 60
    titles = sorted(p["title"] for p in receiver.payloads("phone"))
    assert titles == sorted(f"Reminder: task {n}" for n in range(60))


def test_marking_and_queueing_commit_together(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    task = task_with_reminder(push_runtime, user, NOW - dt.timedelta(minutes=1))
    with push_runtime.engine.begin() as c:
        # Queueing fails (as if the process died there): nothing may be marked.
        c.execute(sa.text("ALTER TABLE notifications ADD CONSTRAINT test_no_outbox CHECK (false)"))

    with pytest.raises(sa.exc.IntegrityError, match="test_no_outbox"):
        remind(push_runtime)

    with push_runtime.engine.begin() as c:
        assert (
            c.scalar(sa.text("SELECT reminded_for FROM tasks WHERE id = :t"), {"t": task}) is None
        )
        assert c.scalar(sa.text("SELECT count(*) FROM notifications")) == 0
        c.execute(sa.text("ALTER TABLE notifications DROP CONSTRAINT test_no_outbox"))
    assert remind(push_runtime).sent == 1
    work(push_runtime)
    assert len(receiver.payloads("phone")) == 1


def test_a_user_without_subscriptions_is_reminded_into_the_void_once(push_runtime: Runtime) -> None:
    user = new_user(push_runtime)
    task_with_reminder(push_runtime, user, NOW - dt.timedelta(minutes=1))

    assert remind(push_runtime).sent == 1
    assert remind(push_runtime).sent == 0
    with push_runtime.engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs")) == 0
