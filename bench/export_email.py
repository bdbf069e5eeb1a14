"""Benchmark: 1,000 export e-mails from one worker process to a local SMTP server.

    python bench/export_email.py [--url postgresql://...] [--emails 1000]

Seeds N users with a completed export each and its e-mail waiting, starts aiosmtpd (its Sink
handler, which takes and drops every message) in a process of its own, then runs one
`planner-jobs worker --queue notifications --burst` process with one `emails.send` job: it sends
them all over one reused connection, each in its own transaction that records the outcome.
Throughput is read from the database (the first to the last e-mail's `finished_at`), so the
worker's start does not count. Baseline, in this process: aiosmtplib's `send()` per message (a
new connection for each, nothing recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _support import create_database, database_url, drop_database, server

SEED = """
WITH made AS (
    INSERT INTO users (email) SELECT 'user' || n || '@example.com' FROM generate_series(1, :n) n
    RETURNING id
), exported AS (
    INSERT INTO export_jobs (user_id, format, status, created_at, completed_at, build_queued_at)
    SELECT id, 'json', 'complete', now(), now(), now() FROM made
    RETURNING id
)
INSERT INTO export_emails (export_id) SELECT id FROM exported
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"the SMTP server did not start on port {port}")


def seed(url: str, n: int, data_dir: str) -> None:
    import sqlalchemy as sa

    from planner_jobs.db.migrate import migrate
    from planner_jobs.engine.defer import defer_in_transaction
    from planner_jobs.runtime import open_runtime
    from planner_jobs.settings import load_settings

    settings = load_settings(database_url=url, data_dir=data_dir)
    with open_runtime(settings, periodic=False) as runtime:
        migrate(runtime.engine)
        with runtime.engine.begin() as c:
            c.execute(sa.text(SEED), {"n": n})
            defer_in_transaction(c, runtime.job_app, "emails.send", queueing_lock="emails.send")


def worker_run(url: str, smtp_port: int, n: int, data_dir: str) -> tuple[float, float, int]:
    """(e-mails/s between the first and the last one sent, the worker's wall time, sent)."""
    import psycopg

    environment = {
        **os.environ,
        "PLANNER_DATABASE_URL": url,
        "PLANNER_DATA_DIR": data_dir,
        "PLANNER_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "PLANNER_APP_URL": "https://planner.example",
        "PLANNER_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "planner_jobs", "worker", "--queue", "notifications", "--burst"],
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT count(*), extract(epoch FROM max(finished_at) - min(finished_at))"
            " FROM export_emails WHERE status = 'sent'"
        ).fetchone()
    assert row is not None
    sent, span = int(row[0]), float(row[1] or 0)
    return (sent - 1) / span if span else float("nan"), wall, sent


async def naive(port: int, n: int) -> float:
    """aiosmtplib.send() per message: a new connection each time. Messages/s."""
    import aiosmtplib

    from planner_jobs.domain.email import ready_message

    started = time.perf_counter()
    for i in range(n):
        message = ready_message(
            export_id=uuid.uuid4(),
            export_format="json",
            to=f"user{i}@example.com",
            sender="Proactive Planner <no-reply@localhost>",
            app_url="https://planner.example",
            now=dt.datetime.now(dt.UTC),
        )
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL server to use (default: an embedded one)")
    parser.add_argument("--emails", type=int, default=1000)
    arguments = parser.parse_args()
    n = arguments.emails
    port = free_port()
    smtpd = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        with server(arguments.url) as server_url, tempfile.TemporaryDirectory() as data_dir:
            name = create_database(server_url)
            try:
                url = database_url(server_url, name)
                seed(url, n, data_dir)
                rate, wall, sent = worker_run(url, port, n, data_dir)
            finally:
                drop_database(server_url, name)
        baseline = asyncio.run(naive(port, n))
    finally:
        smtpd.terminate()
        smtpd.wait()
    print(f"{n:,} export e-mails to a local aiosmtpd (Sink), one worker process")
    print(f"  sent: {sent:,} of {n:,}; worker process {wall:.2f} s from start to exit")
    print(f"  planner-jobs emails.send (one connection, a transaction each): {rate:,.0f} e-mails/s")
    print(f"  baseline, aiosmtplib.send() per message (a connection each):   {baseline:,.0f}/s")
    print(f"  goal >= 200/s: {'met' if rate >= 200 else 'NOT met'}")


if __name__ == "__main__":
    main()
