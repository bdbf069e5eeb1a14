"""Every query of the inspection room stays index-backed on a busy installation's job history:
with 1,000,000 finished jobs kept, none reads the job engine's tables end to end."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.engine.queues import QUEUES
from planner_jobs.inspection import views
from planner_jobs.runtime import Runtime, open_runtime
from planner_jobs.settings import Settings
from tests.job_history import add_finished_jobs

FINISHED_JOBS = 1_000_000
SCANNED = re.compile(r"Seq Scan on (procrastinate_jobs|procrastinate_events)\b")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    with open_runtime(settings, periodic=False) as runtime:
        yield runtime


def statements_of(runtime: Runtime) -> list[tuple[str, object]]:
    """Each statement the views, and a scrape of the metrics, send (with its parameters)."""
    sent: list[tuple[str, object]] = []

    def capture(_c: object, _cur: object, statement: str, parameters: object, *_: object) -> None:
        sent.append((statement, parameters))

    sa.event.listen(runtime.engine, "before_cursor_execute", capture)
    try:
        with runtime.engine.connect() as c:
            newest = views.jobs(c, limit=1)[0].id
            now = views.database_now(c)
            views.status(c, stalled_after=60)
            for queue in QUEUES:
                views.jobs(c, queue=queue)
            for status in ("todo", "doing", "failed", "cancelled", "succeeded"):
                views.jobs(c, status=status)
            views.jobs(c, task="rollover.sweep", status="failed")
            views.jobs(c, task="tokens.cleanup")
            views.jobs(c, before=newest // 2)
            views.jobs(c, user=uuid.uuid4())
            views.jobs(c, user=uuid.uuid4(), status="failed", queue="notifications")
            views.jobs(c, since=now - dt.timedelta(hours=1))
            views.jobs(c, since=now - dt.timedelta(days=3), until=now - dt.timedelta(days=2))
            views.job(c, newest // 2, stalled_after=60)
            views.jobs_per_minute(c)
            views.recent_exports(c)
            views.waiting_deliveries(c)
        generate_latest(runtime.metrics.registry)
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", capture)
    return sent


def test_no_inspection_query_reads_the_whole_job_history(runtime: Runtime) -> None:
    with runtime.engine.connect() as c:
        add_finished_jobs(c, FINISHED_JOBS)
    with runtime.engine.begin() as c:  # and a few jobs waiting, as always
        for task in ("exports.expire", "tokens.cleanup", "rollover.sweep"):
            defer_in_transaction(c, runtime.job_app, task, timestamp=0)

    sent = statements_of(runtime)

    queries = [(s, p) for s, p in sent if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(queries) >= 20, sent
    with runtime.engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs")) >= FINISHED_JOBS
        for statement, parameters in queries:
            plan = "\n".join(c.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
            assert not SCANNED.search(plan), f"{statement}\n{plan}"
