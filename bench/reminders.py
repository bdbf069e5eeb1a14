"""Benchmark: the reminders sweep at a minute where 100,000 routine reminders and 100,000 streak
checks fall due.

    python bench/reminders.py [--users 100000] [--naive-users 2000] [--url postgresql://...]

Seeds USERS users in a few zones, each with a routine of 3 steps, one of them reminded daily at
09:00 local, a 3-day streak, a streak nudge at 09:00 local and a plan for the day with 4 tasks,
one done (1 + 0 of 3 routine steps: 1 of 7, the goal not met); clones the seed twice. On the
first clone, `send_reminders` (the `planner-jobs cron reminders` tick) runs once at 02:00 local
(it plans every reminder and nudge), then once at 09:00:30 local for each zone's users, and is
timed there: every notification raised. On the second, the baseline: a per-user Python loop
that reads the user's routine task and its user, decides with the same rules and queues its
reminder through `planner_notify()`, then reads the user's streak and counts the day's tasks,
decides and queues the nudge the same way, a transaction per user, for NAIVE_USERS of them.
Prints both rates side by side (goal: within 30 s, and 10 times the loop).
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
from planner_jobs.domain.days import day_bounds, resolve_zone
from planner_jobs.domain.reminders import (
    NudgeOutcome,
    RoutineOutcome,
    daily_slot,
    routine_payload,
    routine_step,
    routine_topic,
    streak_at_stake,
    streak_risk_key,
    streak_risk_payload,
)
from planner_jobs.domain.streaks import Protection, effective_threshold, tasks_to_goal
from planner_jobs.jobs.reminders import send_reminders

GRACE = dt.timedelta(minutes=15)
PLANNED = dt.datetime(2026, 6, 2, 0, 0, tzinfo=dt.UTC)  # 02:00 local
NOW = dt.datetime(2026, 6, 2, 7, 0, 30, tzinfo=dt.UTC)  # 09:00:30 in Paris and Berlin
ZONES = ("Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Africa/Johannesburg")  # UTC+2 in June
SEED = """
INSERT INTO users (email, timezone, created_at)
    SELECT 'user' || n || '@example.com', (:zones)[1 + n % 4], '2026-06-01T06:00Z'
      FROM generate_series(1, :users) AS n;
INSERT INTO daily_routines (user_id, name) SELECT id, 'morning' FROM users;
INSERT INTO routine_tasks (routine_id, title, position, remind_time)
    SELECT r.id, 'step ' || k, k, CASE WHEN k = 1 THEN TIME '09:00' END
      FROM daily_routines r, generate_series(1, 3) AS k;
UPDATE users SET streak_reminder_at = '09:00';
INSERT INTO streaks (user_id, current, longest) SELECT id, 3, 3 FROM users;
INSERT INTO todays_plans (user_id, plan_date) SELECT id, DATE '2026-06-02' FROM users;
INSERT INTO tasks (user_id, plan_id, title, completed, completed_at)
    SELECT p.user_id, p.id, 'task ' || k, k = 1,
           CASE WHEN k = 1 THEN TIMESTAMPTZ '2026-06-02T06:00Z' END
      FROM todays_plans p, generate_series(1, 4) AS k
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
        "planned_sent": planned.routine_sent + planned.streak_sent,
        "plan_seconds": plan_seconds,
        "routine_sent": summary.routine_sent,
        "streak_sent": summary.streak_sent,
        "sent": summary.routine_sent + summary.streak_sent,
        "raised": raised,
        "seconds": seconds,
    }


NAIVE_READ = """
SELECT t.id, t.title, t.remind_time, t.completed, t.completed_at, r.user_id,
       u.timezone, u.day_starts_at, u.days_off, u.vacation_start, u.vacation_end
  FROM routine_tasks t JOIN daily_routines r ON r.id = t.routine_id JOIN users u ON u.id = r.user_id
 WHERE r.user_id = :id AND t.remind_time IS NOT NULL
"""
NAIVE_STREAK = """
SELECT u.timezone, u.day_starts_at, u.streak_reminder_at, u.days_off, u.vacation_start,
       u.vacation_end, u.streak_threshold, coalesce(s.current, 0) AS streak
  FROM users u LEFT JOIN streaks s ON s.user_id = u.id
 WHERE u.id = :id
"""
NAIVE_PLAN_TASKS = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE t.completed AND (t.completed_at IS NULL OR t.completed_at < :end))
  FROM todays_plans p JOIN tasks t ON t.plan_id = p.id
 WHERE p.user_id = :id AND p.plan_date = :day
"""
NAIVE_ROUTINE_TASKS = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE t.completed AND (t.completed_at IS NULL OR
                                               t.completed_at >= :start AND t.completed_at < :end))
  FROM daily_routines r JOIN routine_tasks t ON t.routine_id = r.id
 WHERE r.user_id = :id
"""
NOTIFY = (
    "SELECT planner_notify(:u, CAST(:p AS jsonb), topic => :topic, ttl => :ttl, dedupe_key => :key)"
)


def phase_naive(url: str, limit: int) -> dict[str, object]:
    """One user at a time: read their routine task and its user, decide, queue; read their
    streak and count the day's tasks, decide, queue; commit."""
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = connection.scalars(
            sa.text("SELECT id FROM users ORDER BY id LIMIT :n"), {"n": limit}
        ).all()
    started = time.perf_counter()
    sent = 0
    for user_id in ids:
        with engine.begin() as connection:
            sent += _naive_routine(connection, user_id)
            sent += _naive_streak(connection, user_id)
    return {"sent": sent, "seconds": time.perf_counter() - started}


def _naive_routine(connection: sa.Connection, user_id: object) -> int:
    sent = 0
    for row in connection.execute(sa.text(NAIVE_READ), {"id": user_id}).all():
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
                sa.text(NOTIFY),
                {
                    "u": row.user_id,
                    "p": json.dumps(routine_payload(row.id, row.title, step.day)),
                    "topic": routine_topic(row.id),
                    "ttl": 900,
                    "key": f"planner-routine-{row.id}-{step.day.isoformat()}",
                },
            )
            sent += 1
    return sent


def _naive_streak(connection: sa.Connection, user_id: object) -> int:
    user = connection.execute(sa.text(NAIVE_STREAK), {"id": user_id}).one()
    zone = resolve_zone(user.timezone)
    slot = daily_slot(
        zone=zone,
        starts=user.day_starts_at,
        remind_time=user.streak_reminder_at,
        pending=None,
        now=NOW,
        grace=GRACE,
    )
    protection = Protection(user.days_off, user.vacation_start, user.vacation_end)
    if streak_at_stake(slot, streak=user.streak, protection=protection) is not NudgeOutcome.SEND:
        return 0
    start, end = day_bounds(slot.day, zone, user.day_starts_at)
    asked = {"id": user_id, "day": slot.day, "start": start, "end": end}
    plan_total, plan_done = connection.execute(sa.text(NAIVE_PLAN_TASKS), asked).one()
    routine_total, routine_done = connection.execute(sa.text(NAIVE_ROUTINE_TASKS), asked).one()
    total, done = plan_total + routine_total, plan_done + routine_done
    remaining = tasks_to_goal(done, total, effective_threshold(user.streak_threshold, 75))
    if remaining == 0:
        return 0
    connection.execute(
        sa.text(NOTIFY),
        {
            "u": user_id,
            "p": json.dumps(
                streak_risk_payload(slot.day, streak=user.streak, remaining=remaining, total=total)
            ),
            "topic": "streak-risk",
            "ttl": int((end - NOW).total_seconds()),
            "key": streak_risk_key(slot.day),
        },
    )
    return 1


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
                f"seeding {args.users:,} users, a routine reminder and a streak nudge each at"
                " 09:00...",
                flush=True,
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
    print(
        f"{args.users:,} routine reminders and {args.users:,} streak checks due at 09:00"
        " (4 zones at UTC+2), one process:"
    )
    print(
        f"  planning pass at 02:00 local: {swept['plan_seconds']:.1f} s"
        f" ({swept['planned_sent']} sent: none is due)"
    )
    print(
        f"  the sweep at 09:00:30: {swept['routine_sent']:,} routine reminders and"
        f" {swept['streak_sent']:,} streak nudges raised in {swept['seconds']:.1f} s"
        f" = {rate:,.0f}/s (goal: all within 30 s); in the outbox: {swept['raised']:,}"
    )
    print(
        f"  per-user loop: {naive['sent']:,} in {naive['seconds']:.1f} s = {naive_rate:,.0f}/s;"
        f" ratio {rate / naive_rate:.1f}x (goal 10x)"
    )


if __name__ == "__main__":
    main()
