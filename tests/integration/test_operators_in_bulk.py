"""Operators act on many jobs at once, find the jobs of one user and pause a queue: on a real
PostgreSQL, with real workers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import sqlalchemy as sa

from planner_jobs.db.engine import libpq_url
from planner_jobs.engine import actions, pauses
from planner_jobs.engine.defer import defer_periodic_now
from planner_jobs.engine.views import JobFilter
from planner_jobs.inspection import views
from planner_jobs.runtime import Runtime
from tests.integration.conftest import new_user
from tests.integration.test_inspection import defer, run_queue
from tests.integration.test_way_in import running_worker


def statuses(runtime: Runtime, *jobs: int) -> list[str]:
    with runtime.engine.connect() as c:
        found = dict(
            c.execute(
                sa.text("SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(:ids)"),
                {"ids": list(jobs)},
            ).all()
        )
    return [found[job] for job in jobs]


def send_job(runtime: Runtime, user: uuid.UUID) -> int:
    return defer(runtime, "notifications.send", userId=str(user), payload={"t": 1})


def test_the_jobs_about_a_user_are_their_notifications_exports_and_deliveries(
    runtime: Runtime,
) -> None:
    user, other = new_user(runtime), new_user(runtime)
    with runtime.engine.begin() as c:
        mine, theirs = (
            c.scalar(sa.text("SELECT planner_notify(:u, '{}')"), {"u": u}) for u in (user, other)
        )
        export = c.scalar(sa.text("SELECT planner_request_export(:u, 'csv')"), {"u": user})
    sent = send_job(runtime, user)
    send_job(runtime, other)
    built = defer(runtime, "exports.build", export_id=str(export))
    delivered = defer(runtime, "notifications.deliver", notificationIds=[theirs, mine])
    defer(runtime, "notifications.deliver", notificationIds=[theirs])
    defer(runtime, "tokens.cleanup", timestamp=0)

    with runtime.engine.connect() as c:
        about_user = [j.id for j in views.jobs(c, user=user)]
        about_nobody = views.jobs(c, user=uuid.uuid4())
        sends = [j.id for j in views.jobs(c, user=user, task="notifications.send")]

    assert about_user == [delivered, built, sent]
    assert about_nobody == []
    assert sends == [sent]


def test_retry_all_puts_back_what_the_filters_select_and_cancel_all_what_waits(
    runtime: Runtime,
) -> None:
    ghosts = [uuid.uuid4() for _ in range(3)]
    failed = [send_job(runtime, ghost) for ghost in ghosts]  # no such users: they fail
    run_queue(runtime, "notifications")
    waiting = [
        defer(runtime, "exports.build", export_id=str(uuid.uuid4())),
        send_job(runtime, ghosts[0]),
    ]
    assert statuses(runtime, *failed, *waiting) == ["failed"] * 3 + ["todo"] * 2

    with runtime.engine.begin() as c:
        one = actions.retry_all(c, JobFilter(user=ghosts[1]), stalled_after=60)
        rest = actions.retry_all(c, JobFilter(queue="notifications"), stalled_after=60)
        nothing = actions.retry_all(c, JobFilter(queue="exports"), stalled_after=60)
    assert (one.done, rest.done, nothing.done) == (1, 2, 0)
    assert statuses(runtime, *failed) == ["todo"] * 3

    with runtime.engine.begin() as c:
        cancelled = actions.cancel_all(c, JobFilter(task="notifications.send", user=ghosts[0]))
    assert cancelled.line() == "2 jobs are cancelled"
    assert statuses(runtime, *failed, *waiting) == [
        "cancelled",
        "todo",
        "todo",
        "todo",
        "cancelled",
    ]
    with runtime.engine.connect() as c:
        attempts = c.execute(
            sa.text("SELECT attempts FROM procrastinate_jobs WHERE id = ANY(:ids) ORDER BY id"),
            {"ids": failed},
        ).scalars()
        assert list(attempts) == [1, 1, 1]  # put back, not run again yet: one run each


def test_retry_all_leaves_a_job_whose_queueing_lock_another_waiting_job_holds(
    runtime: Runtime,
) -> None:
    with runtime.engine.begin() as c:
        first, _ = defer_periodic_now(c, task="tokens.cleanup", queue="maintenance")
        c.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :j"), {"j": first}
        )
        second, new = defer_periodic_now(c, task="tokens.cleanup", queue="maintenance")
        again, new_again = defer_periodic_now(c, task="tokens.cleanup", queue="maintenance")
    assert (new, again, new_again) == (True, second, False)

    with runtime.engine.begin() as c:
        bulk = actions.retry_all(c, JobFilter(task="tokens.cleanup"), stalled_after=60)

    assert (bulk.done, bulk.skipped) == (0, 1)
    assert "1 left as they are: a job with the same queueing lock is waiting" in bulk.line()
    assert statuses(runtime, first, second) == ["failed", "todo"]


def test_a_paused_queue_is_left_alone_until_resumed(runtime: Runtime) -> None:
    user = new_user(runtime)
    with runtime.engine.begin() as c:
        said = pauses.pause(c, "notifications")
        pauses.pause(c, "notifications")  # again: nothing changes
    job = send_job(runtime, user)

    run_queue(runtime, "notifications")  # a burst worker finds nothing it may take, and ends
    with runtime.engine.connect() as c:
        [queue] = [q for q in views.queues(c) if q.name == "notifications"]
    assert statuses(runtime, job) == ["todo"]
    assert queue.paused
    assert said.startswith("queue notifications is paused")

    with runtime.engine.begin() as c:
        assert pauses.resume(c, "notifications").startswith("queue notifications is resumed")
        assert pauses.resume(c, "notifications") == "queue notifications was not paused"
    run_queue(runtime, "notifications")
    assert statuses(runtime, job) == ["succeeded"]


def test_a_running_worker_honours_a_pause_at_once_and_a_resume_within_two_seconds(
    runtime: Runtime,
) -> None:
    """A worker started before the pause takes none of the queue's jobs from the moment the
    pause commits (before: it went by the pauses it had read up to a second ago, so a job
    retried just after a pause could run), and takes them again when woken by the resume (not
    at its next poll, 5 s later)."""
    user = new_user(runtime)
    with running_worker(runtime):
        first = send_job(runtime, user)
        wait_for(lambda: statuses(runtime, first) == ["succeeded"], within=10)
        with runtime.engine.begin() as c:
            pauses.pause(c, "notifications")
        held = send_job(runtime, user)  # queued (and the worker woken) just after the pause
        time.sleep(2.0)
        assert statuses(runtime, held) == ["todo"]

        with runtime.engine.begin() as c:
            pauses.resume(c, "notifications")
        resumed = time.monotonic()
        wait_for(lambda: statuses(runtime, held) == ["succeeded"], within=10)
        assert time.monotonic() - resumed < 2.0


def test_a_retried_job_is_taken_at_once_by_a_waiting_worker(runtime: Runtime) -> None:
    """Retrying wakes the workers: the job starts well before a worker's 5 s poll."""
    job = send_job(runtime, uuid.uuid4())  # no such user: it fails
    run_queue(runtime, "notifications")
    with running_worker(runtime):
        time.sleep(2.0)  # the worker has polled, and waits
        with runtime.engine.begin() as c:
            actions.retry(c, job, stalled_after=60)
        wait_for(lambda: statuses(runtime, job) == ["failed"], within=10)
        with runtime.engine.connect() as c:
            detail = views.job(c, job, stalled_after=60)
    assert detail is not None
    events = [(e.type, e.at) for e in detail.events]
    retried = next(at for kind, at in events if kind == "retried")
    started = [at for kind, at in events if kind == "started"][-1]
    assert (started - retried).total_seconds() < 1.0, events
    assert detail.job.attempts == 2
    assert [f.attempt for f in detail.failures] == [1, 2]


def wait_for(condition: Any, *, within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        time.sleep(0.05)


def test_the_functions_of_the_indexes_are_not_callable_by_everyone(runtime: Runtime) -> None:
    with psycopg.connect(libpq_url(runtime.database_url)) as connection:
        row = connection.execute(
            "SELECT has_function_privilege('public',"
            " 'planner_job_notification_ids(jsonb)', 'EXECUTE')"
        ).fetchone()
    assert row == (False,)
