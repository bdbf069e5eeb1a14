"""Benchmark: the reminders sweep at a minute where 100,000 routine reminders fall due.

    python bench/reminders.py [--users 100000] [--naive-users 2000] [--url postgresql://...]

Seeds USERS users in a few zones, each with a routine of 3 steps, one of them reminded daily at
09:00 local; clones the seed twice. On the first clone, `send_reminders` (the
`planner-jobs cron reminders` tick) runs once at 08:00 (it plans every reminder), then once at
09:00:30 local for each zone's users, and is timed there: every notification raised. On the
second, the baseline: a per-user Python loop that reads each routine task and its user, decides
with the same rules, and queues its notification through `planner_notify()`, a transaction
each, for NAIVE_USERS of them. Prints both rates side by side (goal: within 30 s, and 10 times
the loop).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from _support import create_database, database_url, drop_database, run_phase, server, vacuum_analyze
from planner_jobs.db.engine import create_engine
from planner_jobs.db.migrate import migrate
from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.reminders import RoutineOutcome, routine_payload, routine_step
from planner_jobs.domain.streaks import Protection
from planner_jobs.jobs.reminders import send_reminders

GRACE = dt.timedelta(minutes=15)
PLANNED = dt.datetime(2026, 6, 2, 0, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 6, 2, 7, 0, 30, tzinfo=dt.UTC)  # 09:00:30 in Paris and Berlin
ZONES = ("Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Africa/Johannesburg")  # UTC+2 in June
SEED = """
INSERT INTO users (email, timezone, created_at)
    SELECT 'user' || n || '@example.com', (:zones)[1 + n % 4], '2026-06-01T06:00Z'
      FROM generate_series(1, :users) AS n;
INSERT INTO daily_routines (user_id, name) SELECT id, 'morning' FROM users;
INSERT INTO routine_tasks (routine_id, title, position, remind_time)
    SELECT r.id, 'step ' || k, k, CASE WHEN k = 1 THEN TIME '09:00' END
      FROM daily_routines r, generate_series(1, 3) AS k
"""


def seed(url: str, users: int) -> None:
    engine = create_engine(url)
    migrate(engine)
    with engine.begin() as connection:
        for statement in SEED.split(";"):
            connection.execute(sa.text(statement), {"users": users, "zones": list(ZONES)})
    engine.dispose()
    vacuum_analyze(url)


def phase_sweep(url: str) -> dict[str, object]:
    engine = create_engine(url)
    started = time.perf_counter()
    planned = send_reminders(engine, now=PLANNED, grace=GRACE)
    plan_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = send_reminders(engine, now=NOW, grace=GRACE)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        raised = connection.scalar(sa.text("SELECT count(*) FROM notifications"))
    return {
        "planned_sent": planned.routine_sent,
        "plan_seconds": plan_seconds,
        "sent": summary.routine_sent,
        "raised": raised,
        "seconds": seconds,
    }


NAIVE_READ = """
SELECT t.id, t.title, t.remind_time, t.completed, t.completed_at, r.user_id,
       u.timezone, u.day_starts_at, u.days_off, u.vacation_start, u.vacation_end
  FROM routine_tasks t JOIN daily_routines r ON r.id = t.routine_id JOIN users u ON u.id = r.user_id
 WHERE t.id = :id
"""


def phase_naive(url: str, limit: int) -> dict[str, object]:
    """One routine task at a time: read it and its user, decide, queue, commit."""
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = connection.scalars(
            sa.text(
                "SELECT id FROM routine_tasks WHERE remind_time IS NOT NULL ORDER BY id LIMIT :n"
            ),
            {"n": limit},
        ).all()
    started = time.perf_counter()
    sent = 0
    for task_id in ids:
        with engine.begin() as connection:
            row = connection.execute(sa.text(NAIVE_READ), {"id": task_id}).one()
            step = routine_step(
                zone=resolve_zone(row.timezone),
                starts=row.day_starts_at,
                remind_time=row.remind_time,
                pending=None,
                completed=row.completed,
                completed_at=row.completed_at,
                protection=Protection(row.days_off, row.vacation_start, row.vacation_end),
                now=NOW,
                grace=GRACE,
            )
            if step.outcome is RoutineOutcome.SEND:
                connection.execute(
                    sa.text("SELECT planner_notify(:u, CAST(:p AS jsonb), ttl => 900)"),
                    {
                        "u": row.user_id,
                        "p": json.dumps(routine_payload(row.id, row.title, step.day)),
                    },
                )
                sent += 1
    return {"sent": sent, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--naive-users", type=int, default=2_000)
    parser.add_argument("--url", default=None, help="a server to use instead of an embedded one")
    parser.add_argument("--phase", choices=["sweep", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "sweep":
        print(json.dumps(phase_sweep(args.database)))
        return
    if args.phase == "naive":
        print(json.dumps(phase_naive(args.database, args.naive_users)))
        return

    with server(args.url) as server_url:
        seed_name = create_database(server_url)
        names: list[str] = []
        try:
            print(
                f"seeding {args.users:,} users, one routine reminder each at 09:00...", flush=True
            )
            seed(database_url(server_url, seed_name), args.users)
            names = [create_database(server_url, template=seed_name) for _ in range(2)]
            sweep_url, naive_url = (database_url(server_url, name) for name in names)
            swept = run_phase(__file__, "--phase", "sweep", "--database", sweep_url)
            naive = run_phase(
                __file__,
                "--phase",
                "naive",
                "--database",
                naive_url,
                "--naive-users",
                str(args.naive_users),
            )
        finally:
            for name in [*names, seed_name]:
                drop_database(server_url, name)
    rate = float(swept["sent"]) / float(swept["seconds"])  # type: ignore[arg-type]
    naive_rate = float(naive["sent"]) / float(naive["seconds"])  # type: ignore[arg-type]
    print(f"{args.users:,} routine reminders due at 09:00 (4 zones at UTC+2), one process:")
    print(
        f"  planning pass at 00:00 UTC: {swept['plan_seconds']:.1f} s"
        f" ({swept['planned_sent']} sent: none is due)"
    )
    print(
        f"  the sweep at 09:00:30: {swept['sent']:,} raised in {swept['seconds']:.1f} s"
        f" = {rate:,.0f}/s (goal: all within 30 s); in the outbox: {swept['raised']:,}"
    )
    print(
        f"  per-user loop: {naive['sent']:,} in {naive['seconds']:.1f} s = {naive_rate:,.0f}/s;"
        f" ratio {rate / naive_rate:.1f}x (goal 10x)"
    )


if __name__ == "__main__":
    main()
