"""The inspection room on jobs that really ran: queues, jobs, a job's timeline and failures, the
schedule, the planner's own state; retry and cancel; failures pruned with their jobs; the
metrics read at scrape time; the probes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from planner_jobs.api.app import create_app
from planner_jobs.db.engine import create_engine
from planner_jobs.engine import actions
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.engine.maintenance import prune_finished_jobs
from planner_jobs.engine.worker import WorkerPlan
from planner_jobs.inspection import views
from planner_jobs.runtime import Runtime, open_runtime
from planner_jobs.service import serve
from planner_jobs.settings import Settings
from tests.data import add_user, utc


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Without periodic ticks, so a burst run leaves in the queues only what a test put there."""
    with open_runtime(settings, periodic=False) as runtime:
        yield runtime


def defer(runtime: Runtime, task: str, **arguments: object) -> int:
    with runtime.engine.begin() as c:
        job = defer_in_transaction(c, runtime.job_app, task, **arguments)
    assert job is not None
    return job


def failing_job(runtime: Runtime) -> int:
    """A real job that fails: a notification for a user that does not exist."""
    return defer(runtime, "notifications.send", userId=str(uuid.uuid4()), payload={"t": 1})


def run_queue(runtime: Runtime, queue: str) -> None:
    asyncio.run(serve(runtime, workers=[WorkerPlan([queue])], burst=True))


def test_queues_count_what_waits_ran_and_failed(runtime: Runtime) -> None:
    failed = failing_job(runtime)
    run_queue(runtime, "notifications")
    waiting = defer(runtime, "tokens.cleanup", timestamp=0)
    with runtime.engine.begin() as c:  # waiting for a minute, as if no worker had been there
        c.execute(
            sa.text(
                "UPDATE procrastinate_events SET at = now() - interval '1 minute' WHERE job_id = :j"
            ),
            {"j": waiting},
        )

    with runtime.engine.connect() as c:
        queues = {q.name: q for q in views.queues(c)}

    assert queues["notifications"].counts["failed"] == 1
    assert queues["maintenance"].counts["todo"] == 1
    assert 59 < (queues["maintenance"].oldest_ready_seconds or 0) < 120
    assert queues["exports"].oldest_ready_seconds is None
    with runtime.engine.connect() as c:
        assert [j.id for j in views.jobs(c, status="failed")] == [failed]


def test_a_failed_jobs_traceback_is_kept_and_retry_runs_it_again(runtime: Runtime) -> None:
    ghost = uuid.uuid4()
    job = defer(runtime, "notifications.send", userId=str(ghost), payload={"t": 1})
    run_queue(runtime, "notifications")

    with runtime.engine.connect() as c:
        detail = views.job(c, job, stalled_after=60)
    assert detail is not None
    assert detail.job.status == "failed"
    [failure] = detail.failures
    assert failure.exception == "planner_jobs.jobs.notifications.BadNotification"
    assert failure.message == f"user_id: there is no user {ghost}"
    assert "Traceback (most recent call last)" in failure.traceback
    assert (failure.attempt, failure.worker_id is not None) == (1, True)
    assert [e.type for e in detail.events] == ["deferred", "started", "failed"]

    with runtime.engine.begin() as c:
        c.execute(
            sa.text("INSERT INTO users (id, email) VALUES (:i, 'g@example.com')"), {"i": ghost}
        )
        assert actions.retry(c, job, stalled_after=60) == f"job {job} (failed) is back in its queue"
    run_queue(runtime, "notifications")

    with runtime.engine.connect() as c:
        again = views.job(c, job, stalled_after=60)
    assert again is not None
    assert again.job.status == "succeeded"
    assert again.job.attempts == 2  # one run failed, one succeeded: each counted once
    assert [e.type for e in again.events][-3:] == ["retried", "started", "succeeded"]
    assert len(again.failures) == 1


@pytest.mark.parametrize(
    ("status", "action", "refusal"),
    [
        ("succeeded", "retry", "is succeeded: only a failed, cancelled, aborted or stalled"),
        ("todo", "retry", "is todo: only a failed"),
        ("doing", "cancel", "is doing: only a job that has not started"),
        ("failed", "cancel", "is failed: only a job that has not started"),
    ],
)
def test_an_action_on_a_job_in_the_wrong_status_is_refused(
    runtime: Runtime, status: str, action: str, refusal: str
) -> None:
    job = defer(runtime, "tokens.cleanup", timestamp=0)
    with runtime.engine.begin() as c:
        worker = c.scalar(sa.text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id"))
        c.execute(
            sa.text(
                "UPDATE procrastinate_jobs SET status = CAST(:s AS procrastinate_job_status),"
                " worker_id = :w WHERE id = :j"
            ),
            {"s": status, "j": job, "w": worker},
        )

    def act(job_id: int) -> None:
        with runtime.engine.begin() as c:
            if action == "retry":
                actions.retry(c, job_id, stalled_after=60)
            else:
                actions.cancel(c, job_id)

    with pytest.raises(actions.JobActionRefused, match=refusal):
        act(job)
    with pytest.raises(actions.JobActionRefused, match="there is no job 999999"):
        act(999_999)


def test_a_job_not_started_is_cancelled_and_a_stalled_one_handed_back(runtime: Runtime) -> None:
    waiting = defer(runtime, "tokens.cleanup", timestamp=1)
    stalled = defer(runtime, "exports.expire", timestamp=1)
    with runtime.engine.begin() as c:
        dead = c.scalar(
            sa.text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '5 minutes') RETURNING id"
            )
        )
        c.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :j"),
            {"w": dead, "j": stalled},
        )
        assert actions.cancel(c, waiting) == f"job {waiting} is cancelled"
        assert actions.retry(c, stalled, stalled_after=60) == (
            f"job {stalled} (stalled) is back in its queue"
        )
        assert actions.retry(c, waiting, stalled_after=60).endswith("is back in its queue")
    with runtime.engine.connect() as c:
        statuses = dict(c.execute(sa.text("SELECT id, status::text FROM procrastinate_jobs")).all())
        workers = views.workers(c, stalled_after=60)
    assert statuses == {waiting: "todo", stalled: "todo"}
    assert [(w.id, w.alive) for w in workers] == [(dead, False)]


def test_the_schedule_says_the_last_tick_and_success_of_each_periodic_task(
    runtime: Runtime,
) -> None:
    with runtime.engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO procrastinate_periodic_defers"
                " (task_name, defer_timestamp, periodic_id) VALUES"
                " ('rollover.sweep', extract(epoch FROM now())::bigint - 60, 'rollover.sweep')"
            )
        )
    defer(runtime, "rollover.sweep", timestamp=0)
    run_queue(runtime, "maintenance")

    with runtime.engine.connect() as c:
        now = views.database_now(c)
        entries = {e.task: e for e in views.schedule(c, now=now)}
    rollover = entries["rollover.sweep"]
    assert rollover.cron == "* * * * *"
    assert rollover.command == "rollover"
    assert rollover.last_tick is not None
    assert 55 <= (now - rollover.last_tick).total_seconds() <= 65
    assert rollover.last_success is not None
    assert (now - rollover.last_success).total_seconds() < 60
    assert dt.timedelta(0) < rollover.next_tick - now <= dt.timedelta(minutes=1)
    assert entries["tokens.cleanup"].last_success is None


def test_finished_jobs_are_pruned_with_their_failures(runtime: Runtime) -> None:
    job = failing_job(runtime)
    run_queue(runtime, "notifications")
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE procrastinate_events SET at = now() - interval '8 days'"))

    summary = prune_finished_jobs(runtime.engine)

    assert summary.failures == 1
    with runtime.engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM job_failures")) == 0
        assert views.job(c, job, stalled_after=60) is None


def test_status_gathers_the_planners_own_state(runtime: Runtime) -> None:
    with runtime.engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
        c.execute(
            sa.text(
                "UPDATE users SET rollover_due_at = now() - interval '2 minutes',"
                " rollover_retry_at = now() + interval '5 minutes', rollover_error = 'broken'"
                " WHERE id = :u"
            ),
            {"u": user},
        )
        c.execute(
            sa.text(
                "INSERT INTO export_jobs (user_id, format, status) VALUES (:u, 'csv', 'failed')"
            ),
            {"u": user},
        )
        c.execute(sa.text("SELECT planner_notify(:u, '{}')"), {"u": user})

    with runtime.engine.connect() as c:
        seen = views.status(c, stalled_after=60)

    assert seen.revision == seen.head
    assert 119 < seen.rollover.lag_seconds < 180
    assert (seen.rollover.users_due, seen.rollover.users_backing_off) == (1, 1)
    assert seen.rollover.last_error == "broken"
    assert seen.exports == {"pending": 0, "processing": 0, "complete": 0, "failed": 1}
    assert seen.deliveries.outbox == 1
    assert seen.as_json()["rollover"]["users_due"] == 1


# --- metrics and probes -----------------------------------------------------------------------


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def scrape(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(response.text)
    }


def test_metrics_read_the_queues_workers_and_schedule_at_each_scrape(
    client: TestClient, runtime: Runtime
) -> None:
    failing_job(runtime)
    defer(runtime, "rollover.sweep", timestamp=0)
    run_queue(runtime, "notifications")
    run_queue(runtime, "maintenance")
    defer(runtime, "tokens.cleanup", timestamp=0)

    metrics = scrape(client)

    jobs = {
        (labels["queue"], labels["status"]): value
        for labels, value in metrics["planner_jobs_queue_jobs"]
    }
    assert jobs[("notifications", "failed")] == 1
    assert jobs[("maintenance", "todo")] == 1
    assert jobs[("maintenance", "succeeded")] == 1  # in the last hour, written by the worker
    ages = dict(
        (labels["queue"], value)
        for labels, value in metrics["planner_jobs_queue_oldest_ready_age_seconds"]
    )
    assert ages["maintenance"] >= 0
    assert metrics["planner_jobs_workers"] == [({}, 0.0)]
    success = {
        labels["task"]
        for labels, _ in metrics["planner_jobs_periodic_last_success_timestamp_seconds"]
    }
    assert success == {"rollover.sweep"}
    assert metrics["planner_jobs_build_info"] == [({"version": "0.1.0"}, 1.0)]
    assert "planner_jobs_rollover_lag_seconds" in metrics


def test_metrics_and_liveness_answer_while_the_database_is_away(runtime: Runtime) -> None:
    away = create_engine("postgresql://nobody@127.0.0.1:9/nowhere")
    runtime_away = dataclasses.replace(runtime, engine=away)
    from planner_jobs.runtime import _metrics

    runtime_away = dataclasses.replace(runtime_away, metrics=_metrics(away, runtime.settings))
    with TestClient(create_app(runtime_away)) as client:
        metrics = scrape(client)
        assert client.get("/livez").json() == {"status": "ok", "detail": None}
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 503
    assert "planner_jobs_build_info" in metrics
    assert "planner_jobs_queue_jobs" not in metrics
    away.dispose()


def test_readyz_is_503_while_the_schema_is_not_current(
    client: TestClient, runtime: Runtime
) -> None:
    assert client.get("/readyz").status_code == 200
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = '0006'"))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert "planner-jobs migrate" in response.json()["detail"]


def test_a_job_waits_metric_is_observed_by_the_worker(runtime: Runtime) -> None:
    defer(runtime, "tokens.cleanup", timestamp=0)
    run_queue(runtime, "maintenance")
    value = runtime.metrics.registry.get_sample_value(
        "planner_jobs_job_wait_seconds_count", {"queue": "maintenance"}
    )
    assert value == 1


def test_the_work_of_the_ticks_is_counted_per_minute(runtime: Runtime) -> None:
    """What the rollover did shows on the dashboard: user-days closed in the last hour."""
    with runtime.engine.begin() as c:
        add_user(c, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    defer(runtime, "rollover.sweep", timestamp=0)
    run_queue(runtime, "maintenance")
    with runtime.engine.connect() as c:
        seen = views.status(c, stalled_after=60)
    assert seen.last_hour["user_days_closed"] == 3
