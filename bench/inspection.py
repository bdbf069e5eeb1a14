"""Benchmark: what an operator waits for on a busy installation.

    python bench/inspection.py [--jobs 1000000] [--users 100000] [--runs 5] [--url postgresql://...]

Loads JOBS finished jobs (a week of them, tests/job_history.py) and USERS users (a tenth of them
due for their rollover, a hundredth backing off), a few jobs waiting, then times, each RUNS times:
`planner-jobs status` as a separate process (what the operator types: the interpreter, the
imports, the connection and the queries), the same queries in process (`views.status`), and a
scrape of `/metrics` from a running `planner-jobs api` (goals: status < 1 s, /metrics < 200 ms);
then what an operator acting in bulk waits for (issue 22): the jobs of one user (`jobs list
--user`, the query and the process; the dashboard's Jobs page filtered by user; goal < 100 ms of
database time), `jobs retry --all` over 10,000 failed jobs (in a transaction rolled back after
each run; goal < 2 s) and the Overview's refresh request (goal < 50 ms). Prints the median and the
worst of each.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.job_history import add_finished_jobs

from _support import create_database, database_url, drop_database, server
from planner_jobs.catalogue import build_job_app
from planner_jobs.db.engine import create_engine
from planner_jobs.db.migrate import migrate
from planner_jobs.engine import actions
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.engine.views import JobFilter
from planner_jobs.inspection import views

COMMAND = [sys.executable, "-m", "planner_jobs"]
PASSWORD = secrets.token_urlsafe(32)  # the dashboard's, for this run
FAILED = 10_000  # failed jobs `jobs retry --all` puts back

_USERS = """
INSERT INTO users (email, timezone, created_at, rollover_zone, rollover_due_at, rollover_retry_at,
                   rollover_error)
SELECT 'bench' || n || '@example.com', 'Europe/Paris', now() - interval '30 days', 'Europe/Paris',
       now() + CASE WHEN n % 10 = 0 THEN interval '-3 minutes' ELSE interval '10 hours' END,
       CASE WHEN n % 100 = 0 THEN now() + interval '5 minutes' END,
       CASE WHEN n % 100 = 0 THEN 'bench: broken data' END
  FROM generate_series(1, :users) AS n
"""


def seed(url: str, *, jobs: int, users: int) -> None:
    engine = create_engine(url)
    try:
        migrate(engine)
        started = time.perf_counter()
        with engine.begin() as c:
            c.execute(sa.text(_USERS), {"users": users})
        with engine.connect() as c:
            add_finished_jobs(c, jobs)
        job_app = build_job_app(url, periodic=False)
        with engine.begin() as c:
            for n in range(50):
                defer_in_transaction(c, job_app, "tokens.cleanup", timestamp=n)
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        took = time.perf_counter() - started
        print(f"seeded {jobs:,} finished jobs and {users:,} users in {took:.0f} s")
    finally:
        engine.dispose()


def timed(runs: int, action: object) -> list[float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        took.append(time.perf_counter() - started)
    return took


def line(what: str, took: list[float], goal: float | None = None) -> None:
    median, worst = statistics.median(took), max(took)
    verdict = ""
    if goal is not None:
        verdict = f"  (goal < {goal * 1000:.0f} ms: {'met' if worst < goal else 'NOT met'})"
    print(f"{what:<46} median {median * 1000:7.1f} ms   worst {worst * 1000:7.1f} ms{verdict}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", default=None, help="a server to create the database on")
    args = parser.parse_args()

    with server(args.url) as server_url:
        name = create_database(server_url)
        url = database_url(server_url, name)
        try:
            seed(url, jobs=args.jobs, users=args.users)
            environment = {
                **{k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")},
                "PLANNER_DATABASE_URL": url,
                "PLANNER_DATA_DIR": tempfile.mkdtemp(prefix="planner-bench-"),
                "PLANNER_LOG_LEVEL": "WARNING",
                "PLANNER_ADMIN_PASSWORD": PASSWORD,
            }

            def status() -> None:
                subprocess.run(
                    [*COMMAND, "status"], env=environment, check=True, capture_output=True
                )

            def version() -> None:
                subprocess.run(
                    [*COMMAND, "--version"], env=environment, check=True, capture_output=True
                )

            print(
                f"on {args.jobs:,} finished jobs and {args.users:,} users, {args.runs} runs each:"
            )
            line("planner-jobs status (a process, end to end)", timed(args.runs, status), 1.0)
            line("  of which starting Python and the CLI", timed(args.runs, version))
            engine = create_engine(url)
            with engine.connect() as c:
                line(
                    "  of which the queries (views.status)",
                    timed(args.runs, lambda: views.status(c, stalled_after=60)),
                )
                a_user = c.scalar(
                    sa.text(
                        "SELECT (args->>'userId')::uuid FROM procrastinate_jobs"
                        " WHERE task_name = 'notifications.send' ORDER BY id DESC LIMIT 1"
                    )
                )
                line(
                    "jobs of one user (views.jobs, user=U)",
                    timed(args.runs, lambda: views.jobs(c, user=a_user)),
                    0.1,
                )
                line(
                    "  of a user with no job",
                    timed(args.runs, lambda: views.jobs(c, user=uuid.uuid4())),
                    0.1,
                )
            line(
                "planner-jobs jobs list --user U (a process)",
                timed(
                    args.runs,
                    lambda: subprocess.run(
                        [*COMMAND, "jobs", "list", "--user", str(a_user)],
                        env=environment,
                        check=True,
                        capture_output=True,
                    ),
                ),
            )
            with engine.begin() as c:  # FAILED failed jobs in all (the history has 1 in 200)
                c.execute(
                    sa.text(
                        "UPDATE procrastinate_jobs SET status = 'failed' WHERE id IN ("
                        " SELECT id FROM procrastinate_jobs WHERE status = 'succeeded'"
                        " AND task_name = 'notifications.send' LIMIT :n)"
                    ),
                    {
                        "n": FAILED
                        - c.scalar(
                            sa.text(
                                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'"
                            )
                        )
                    },
                )

            def retry_all() -> None:
                with engine.connect() as c, c.begin() as transaction:
                    done = actions.retry_all(c, JobFilter(status="failed"), stalled_after=60)
                    assert done.done + done.skipped == FAILED, done
                    transaction.rollback()

            line(f"jobs retry --all over {FAILED:,} failed jobs", timed(args.runs, retry_all), 2.0)
            engine.dispose()

            port = free_port()
            api = subprocess.Popen(
                [*COMMAND, "api", "--port", str(port)],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2).read()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)

                def scrape() -> None:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()

                scrape()  # the first opens the pool's connection
                line("GET /metrics (planner-jobs api)", timed(args.runs * 4, scrape), 0.2)
                authorization = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()

                def page(path: str) -> None:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}{path}", headers={"Authorization": authorization}
                    )
                    urllib.request.urlopen(request, timeout=10).read()  # noqa: S310

                page("/admin")
                line(
                    "GET /admin/jobs?user=U (the Jobs page)",
                    timed(args.runs * 4, lambda: page(f"/admin/jobs?user={a_user}")),
                    0.1,
                )
                line(
                    "GET /admin (the Overview's refresh)",
                    timed(args.runs * 4, lambda: page("/admin")),
                    0.05,
                )
            finally:
                api.terminate()
                api.wait(timeout=30)
        finally:
            drop_database(server_url, name)


if __name__ == "__main__":
    main()
