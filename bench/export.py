"""Benchmark: building exports of 100,000 and 1,000,000 tasks, streamed vs the naive way.

    python bench/export.py [--url postgresql://...]

Seeds two users (100,000 and 1,000,000 tasks, each with notes, some completed, in plans) and
builds each format through the real export path (snapshot read, streaming writer, local
storage), each run in a fresh process so its peak RSS is its own. Then the naive way for JSON
and CSV: load every task through the ORM, build the whole document in memory, dump it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _support import (
    create_database,
    database_url,
    drop_database,
    peak_rss_mb,
    run_phase,
    server,
    vacuum_analyze,
)

SIZES = (100_000, 1_000_000)

SEED = """
INSERT INTO users (email, timezone) VALUES (:email, 'Europe/Paris') RETURNING id
"""
TASKS = """
INSERT INTO todays_plans (user_id, plan_date)
    SELECT :u, DATE '2026-01-01' + n FROM generate_series(0, 99) AS n;
INSERT INTO tasks (user_id, plan_id, title, notes, completed, completed_at, due_at)
    SELECT :u,
           (SELECT id FROM todays_plans
             WHERE user_id = :u AND plan_date = DATE '2026-01-01' + n % 100),
           'Task number ' || n || ', with "quotes"',
           CASE WHEN n % 3 = 0 THEN 'Notes for task ' || n END,
           n % 2 = 0,
           CASE WHEN n % 2 = 0
                THEN TIMESTAMPTZ '2026-01-01 10:00+00' + (n || ' seconds')::interval END,
           TIMESTAMPTZ '2026-02-01 09:00+00'
      FROM generate_series(1, :n) AS n
"""


def seed(url: str) -> dict[int, str]:
    import sqlalchemy as sa

    from planner_jobs.db.engine import create_engine
    from planner_jobs.db.migrate import migrate

    engine = create_engine(url)
    migrate(engine)
    users = {}
    with engine.begin() as c:
        for size in SIZES:
            user = c.execute(sa.text(SEED), {"email": f"user{size}@example.com"}).scalar_one()
            for statement in TASKS.split(";"):
                c.execute(sa.text(statement), {"u": user, "n": size})
            users[size] = str(user)
    engine.dispose()
    vacuum_analyze(url)
    return users


def phase_build(url: str, user: str, fmt: str, data_dir: str) -> dict[str, object]:
    from planner_jobs.jobs.exports import build_export, request_export
    from planner_jobs.runtime import open_runtime
    from planner_jobs.settings import Settings

    settings = Settings(_env_file=None, database_url=url, data_dir=Path(data_dir))  # type: ignore[call-arg]
    with open_runtime(settings, periodic=False) as runtime:
        job = request_export(runtime.engine, uuid.UUID(user), fmt).job
        started = time.perf_counter()
        cpu = time.process_time()
        build_export(
            runtime.engine,
            runtime.storage,
            runtime.metrics,
            export_id=job.id,
            attempt=1,
            staging=runtime.staging,
            retention=dt.timedelta(days=settings.export_retention_days),
            url_ttl=dt.timedelta(seconds=settings.export_url_ttl),
        )
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        size = sum(p.stat().st_size for p in (Path(data_dir) / "exports").rglob(f"*{job.id}*"))
    return {"seconds": seconds, "cpu": cpu, "bytes": size, "peak_rss_mb": peak_rss_mb()}


def phase_naive(url: str, user: str, fmt: str, data_dir: str) -> dict[str, object]:
    """Everything through the ORM into memory, then one dump."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from planner_jobs.db.engine import create_engine
    from planner_jobs.db.models import Task, TodaysPlan, User

    engine = create_engine(url)
    started = time.perf_counter()
    cpu = time.process_time()
    with Session(engine) as session:
        owner = session.get_one(User, uuid.UUID(user))
        plans = {
            p.id: p.plan_date
            for p in session.scalars(sa.select(TodaysPlan).where(TodaysPlan.user_id == owner.id))
        }
        tasks = session.scalars(sa.select(Task).where(Task.user_id == owner.id)).all()
        rows = [
            {
                "id": str(t.id),
                "title": t.title,
                "notes": t.notes,
                "completed": t.completed,
                "completedAt": t.completed_at.isoformat() if t.completed_at else None,
                "dueAt": t.due_at.isoformat() if t.due_at else None,
                "remindAt": t.remind_at.isoformat() if t.remind_at else None,
                "planDate": plans[t.plan_id].isoformat() if t.plan_id in plans else None,
                "goalId": str(t.goal_id) if t.goal_id else None,
                "createdAt": t.created_at.isoformat(),
            }
            for t in tasks
        ]
        target = Path(data_dir) / f"naive.{fmt}"
        if fmt == "json":
            target.write_text(
                json.dumps({"user": {"id": user, "email": owner.email}, "tasks": rows})
            )
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(rows[0].keys())
            writer.writerows(r.values() for r in rows)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("tasks.csv", buffer.getvalue())
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu": cpu,
        "bytes": target.stat().st_size,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--phase", choices=["build", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--user", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase = phase_build if args.phase == "build" else phase_naive
        print(json.dumps(phase(args.database, args.user, args.format, args.data_dir)))
        return

    with server(args.url) as server_url, tempfile.TemporaryDirectory() as data_dir:
        name = create_database(server_url)
        url = database_url(server_url, name)
        try:
            print("seeding 100,000 and 1,000,000 tasks...", flush=True)
            users = seed(url)
            lines = []
            for kind, formats in (
                ("build", ("json", "csv", "markdown")),
                ("naive", ("json", "csv")),
            ):
                for fmt in formats:
                    for size in SIZES:
                        result = run_phase(
                            __file__,
                            "--phase",
                            kind,
                            "--database",
                            url,
                            "--user",
                            users[size],
                            "--format",
                            fmt,
                            "--data-dir",
                            data_dir,
                        )
                        seconds = float(result["seconds"])  # type: ignore[arg-type]
                        line = (
                            f"{'streamed' if kind == 'build' else 'naive':8} {fmt:8}"
                            f" {size:>9,} tasks:"
                            f" {seconds:6.2f} s = {size / seconds:>9,.0f} rows/s,"
                            f" Python CPU {float(result['cpu']):6.2f} s,"  # type: ignore[arg-type]
                            f" peak RSS {result['peak_rss_mb']:6.0f} MB,"
                            f" file {int(result['bytes']) / 1e6:7.1f} MB"  # type: ignore[call-overload]
                        )
                        print(line, flush=True)
                        lines.append(line)
        finally:
            drop_database(server_url, name)


if __name__ == "__main__":
    main()
