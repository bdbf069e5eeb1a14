"""Benchmark: the rollover sweep vs a straightforward per-user implementation.

    python bench/rollover.py [--users 100000] [--naive-users N] [--url postgresql://...]

Seeds USERS users due at the same midnight (each with a plan of 5 tasks, 3 done, a 5-step
routine, 3 done, and a running streak) through the contract's columns only, clones the seed
three times, closes one clone with `planner_jobs.jobs.rollover.sweep` and another with a
per-user ORM loop (load the user's tasks, count, insert, update, commit, next user), checks
both wrote the same history, and prints users/s, the ratio, peak RSS of each process, and where
the sweep's time goes (SQL vs Python). The third clone's users get random days off, vacations
and freezes (the day closed misses the goal, so every rule is taken) and are swept too: its
throughput is printed beside the plain sweep's.

And what a closed user-day costs the database (issue 21), for the sweep and for a plain
set-based SQL baseline of the same rules (a fourth clone: the history rows, the streaks, the
routine steps reset and the unfinished tasks carried, in the same batches on as many
connections, written the obvious way; run again on a fifth clone whose tables are put back as
issue 21 measured them, before migration 0021's fillfactors): WAL bytes (after a CHECKPOINT,
on the bench's own server), the server's CPU time, the client process's (the sweep applies
the rules in Python; on a machine where it shares the cores with the server, its wall time
includes that), and the rows and index entries written, per user-day, side by side.

And the users' own day boundaries (issue 24): two more clones whose users were created at noon,
one with every user's day starting at midnight, one with random `day_starts_at` values (00:00
to 11:59), both swept at 12:00:30 the next day (every user closes the one date), side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from _support import (
    SqlClock,
    WriteMeter,
    Writes,
    create_database,
    database_url,
    drop_database,
    peak_rss_mb,
    run_phase,
    server,
    vacuum_analyze,
    wal_by_relation_lines,
)
from planner_jobs.db.engine import create_engine
from planner_jobs.db.migrate import migrate
from planner_jobs.db.models import (
    DailyRoutine,
    PerformanceHistory,
    RoutineTask,
    Streak,
    Task,
    TodaysPlan,
    User,
)
from planner_jobs.db.rollover import prefer_index_lookups
from planner_jobs.domain.days import day_bounds, resolve_zone
from planner_jobs.domain.streaks import meets_goal, score
from planner_jobs.jobs.rollover import BATCH_SIZE, PARALLEL_SWEEPERS, sweep

DAY = dt.date(2026, 3, 7)
CREATED = dt.datetime(2026, 3, 7, 6, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 8, 0, 0, 30, tzinfo=dt.UTC)  # 30 s after everybody's midnight
DONE_AT = dt.datetime(2026, 3, 7, 12, tzinfo=dt.UTC)

SEED = """
INSERT INTO users (email, timezone, created_at)
    SELECT 'user' || n || '@example.com', 'UTC', :created FROM generate_series(1, :users) AS n;
INSERT INTO todays_plans (user_id, plan_date) SELECT id, :day FROM users;
INSERT INTO tasks (user_id, plan_id, title, completed, completed_at)
    SELECT p.user_id, p.id, 'task ' || k, k <= 3, CASE WHEN k <= 3 THEN :done_at END
      FROM todays_plans p, generate_series(1, 5) AS k;
INSERT INTO daily_routines (user_id, name) SELECT id, 'morning' FROM users;
INSERT INTO routine_tasks (routine_id, title, position, completed, completed_at)
    SELECT r.id, 'step ' || k, k, k <= 3, CASE WHEN k <= 3 THEN :done_at END
      FROM daily_routines r, generate_series(1, 5) AS k;
INSERT INTO streaks (user_id, current, longest)
    SELECT id, 1 + abs(hashtext(id::text)) % 20, 20 FROM users;
SELECT planner_history_months(ARRAY[CAST(:day AS date)]);
"""
# Created at noon, when every boundary of the morning has passed: each user's first date is
# the bench's day whatever its boundary, and one sweep after the next noon closes just it.
NOON = """
UPDATE users SET created_at = :created;
UPDATE users
   SET day_starts_at = make_time(abs(hashtext(email)) % 12, abs(hashtext(email || 'm')) % 60, 0)
 WHERE :boundaries
"""
NOON_CREATED = dt.datetime(2026, 3, 7, 12, tzinfo=dt.UTC)
NOON_NOW = dt.datetime(2026, 3, 8, 12, 0, 30, tzinfo=dt.UTC)


def created_at_noon(url: str, *, boundaries: bool) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in NOON.split(";"):
            connection.execute(
                sa.text(statement), {"created": NOON_CREATED, "boundaries": boundaries}
            )
    engine.dispose()
    vacuum_analyze(url)


# The same users with the protections the main app may set: random weekdays off, a vacation
# for a quarter of them around the closed day, and 0 to 2 freezes held.
PROTECT = """
UPDATE users SET days_off = abs(hashtext(email)) % 128,
       vacation_start = CASE WHEN abs(hashtext(email || 'v')) % 4 = 0 THEN :day - 1 END,
       vacation_end = CASE WHEN abs(hashtext(email || 'v')) % 4 = 0 THEN :day + 3 END;
UPDATE streaks SET freezes = abs(hashtext(user_id::text || 'f')) % 3;
"""


def protect(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in PROTECT.split(";"):
            if statement.strip():
                connection.execute(sa.text(statement), {"day": DAY})
    engine.dispose()
    vacuum_analyze(url)


def effects_of(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT streak_effect, count(*) FROM performance_history GROUP BY 1")
        ).all()
    engine.dispose()
    return {str(effect): count for effect, count in rows}


def seed(url: str, users: int) -> float:
    engine = create_engine(url)
    migrate(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in SEED.split(";"):
            if statement.strip():
                connection.execute(
                    sa.text(statement),
                    {"users": users, "created": CREATED, "day": DAY, "done_at": DONE_AT},
                )
    engine.dispose()
    vacuum_analyze(url)
    return time.perf_counter() - started


def phase_sweep(url: str, now: dt.datetime = NOW) -> dict[str, object]:
    engine = create_engine(url)
    clock = SqlClock(engine)
    started, cpu = time.perf_counter(), time.process_time()
    summary = sweep(engine, now=now, default_threshold=75)
    seconds = time.perf_counter() - started
    return {
        "users": summary.users,
        "user_days": summary.user_days,
        "seconds": seconds,
        "client_cpu_seconds": time.process_time() - cpu,
        "sql_seconds": clock.seconds,
        "statements": clock.statements,
        "top": clock.top(),
        "peak_rss_mb": peak_rss_mb(),
    }


# The contract's rules for the bench's users (UTC, one plan and one routine each, the day just
# ended), written the obvious set-based way: every row the rules touch is written.
BASELINE = [
    """
    INSERT INTO performance_history
           (user_id, day, completed_tasks, total_tasks, score, threshold, streak_effect)
    SELECT u.id, :day, d.done, d.total,
           CASE WHEN d.total > 0 THEN round(d.done * 100.0 / d.total, 2) END,
           coalesce(u.streak_threshold, 75),
           CASE WHEN d.total > 0 AND d.done * 100 >= coalesce(u.streak_threshold, 75) * d.total
                THEN 'extended' ELSE 'reset' END
      FROM users u
     CROSS JOIN LATERAL (
        SELECT coalesce(sum(parts.done), 0)::int AS done,
               coalesce(sum(parts.total), 0)::int AS total
          FROM (SELECT count(*) FILTER (WHERE t.completed
                          AND (t.completed_at IS NULL OR t.completed_at < :end)) AS done,
                       count(*) AS total
                  FROM todays_plans p JOIN tasks t ON t.plan_id = p.id
                 WHERE p.user_id = u.id AND p.plan_date = :day
                UNION ALL
                SELECT count(*) FILTER (WHERE rt.completed AND (rt.completed_at IS NULL
                          OR (rt.completed_at >= :start AND rt.completed_at < :end))),
                       count(*)
                  FROM daily_routines r JOIN routine_tasks rt ON rt.routine_id = r.id
                 WHERE r.user_id = u.id) AS parts) AS d
     WHERE u.id = ANY(:batch)
    """,
    """
    UPDATE streaks s
       SET current = CASE WHEN h.streak_effect = 'extended' THEN s.current + 1 ELSE 0 END,
           longest = CASE WHEN h.streak_effect = 'extended'
                          THEN greatest(s.longest, s.current + 1) ELSE s.longest END,
           last_activity_date = CASE WHEN h.streak_effect = 'extended'
                                     THEN :day ELSE s.last_activity_date END
      FROM performance_history h
     WHERE h.user_id = s.user_id AND h.day = :day AND s.user_id = ANY(:batch)
    """,
    """
    UPDATE routine_tasks rt SET completed = false, completed_at = NULL
      FROM daily_routines r
     WHERE rt.routine_id = r.id AND r.user_id = ANY(:batch) AND rt.completed
    """,
    """
    INSERT INTO todays_plans (user_id, plan_date)
    SELECT DISTINCT p.user_id, CAST(:day AS date) + 1
      FROM todays_plans p JOIN tasks t ON t.plan_id = p.id
     WHERE p.user_id = ANY(:batch) AND p.plan_date = :day AND NOT t.completed
    ON CONFLICT (user_id, plan_date) DO NOTHING
    """,
    """
    UPDATE tasks t
       SET plan_id = (SELECT n.id FROM todays_plans n
                       WHERE n.user_id = p.user_id AND n.plan_date = CAST(:day AS date) + 1)
      FROM unnest(CAST(:batch AS uuid[])) AS b(user_id)
      JOIN todays_plans p ON p.user_id = b.user_id AND p.plan_date = :day
     WHERE t.plan_id = p.id AND NOT t.completed
    """,
]


# The tables as they were when issue 21 measured its baseline (before migration 0021): routine
# tasks at fillfactor 80, streaks at PostgreSQL's default 100, rows packed as the main app's
# inserts leave them. The storage choices are part of what the sweep is asked to write less
# than (the issue lists fillfactors among the ways to do so), and a baseline run on the sweep's
# own tables gets them for free; the bench runs it on both.
PLAIN_TABLES = [
    "ALTER TABLE routine_tasks SET (fillfactor = 80)",
    "ALTER TABLE streaks RESET (fillfactor)",
    "VACUUM FULL routine_tasks",
    "VACUUM FULL streaks",
]


def plain_tables(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in PLAIN_TABLES:
            connection.execute(statement)
    vacuum_analyze(url)


def phase_baseline(url: str) -> dict[str, object]:
    """The baseline: BATCH_SIZE users per transaction, PARALLEL_SWEEPERS connections."""
    from concurrent.futures import ThreadPoolExecutor

    engine = create_engine(url, pool_size=PARALLEL_SWEEPERS)
    clock = SqlClock(engine)
    start, end = day_bounds(DAY, resolve_zone("UTC"))
    with engine.connect() as connection:
        ids = connection.execute(sa.text("SELECT id FROM users ORDER BY id")).scalars().all()
    batches = [ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
    statements = [sa.text(statement) for statement in BASELINE]

    def close(batch: list[object]) -> None:
        with engine.begin() as connection:
            # Joined through indexes, as the sweep's statements are. The task move drives from
            # the batch and looks each next day's plan up by its key: written as a join of
            # `todays_plans` twice, the planner, whose statistics have not seen the next day's
            # plans (made in this transaction), scanned them for every row of the batch (81 s,
            # then 365 s, of the baseline's time at 100,000 users).
            prefer_index_lookups(connection)
            for statement in statements:
                connection.execute(
                    statement, {"batch": batch, "day": DAY, "start": start, "end": end}
                )

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(PARALLEL_SWEEPERS) as pool:
        list(pool.map(close, batches))
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "users": len(ids),
        "user_days": len(ids),
        "seconds": seconds,
        "client_cpu_seconds": time.process_time() - cpu,
        "top": clock.top(),
    }


def phase_naive(url: str, limit: int | None) -> dict[str, object]:
    """The obvious implementation: one user at a time through the ORM, a commit per user."""
    engine = create_engine(url)
    clock = SqlClock(engine)
    with Session(engine) as session:
        ids = session.scalars(sa.select(User.id).order_by(User.id).limit(limit)).all()
    started = time.perf_counter()
    for user_id in ids:
        with Session(engine) as session, session.begin():
            user = session.get_one(User, user_id)
            zone = resolve_zone(user.timezone)
            start, end = day_bounds(DAY, zone)
            plan = session.scalars(
                sa.select(TodaysPlan).where(
                    TodaysPlan.user_id == user.id, TodaysPlan.plan_date == DAY
                )
            ).one_or_none()
            tasks = (
                session.scalars(sa.select(Task).where(Task.plan_id == plan.id)).all()
                if plan
                else []
            )
            routine = session.scalars(
                sa.select(RoutineTask).join(DailyRoutine).where(DailyRoutine.user_id == user.id)
            ).all()
            done_tasks = [
                t for t in tasks if t.completed and (t.completed_at is None or t.completed_at < end)
            ]
            done_routine = [
                r
                for r in routine
                if r.completed and (r.completed_at is None or start <= r.completed_at < end)
            ]
            completed, total = len(done_tasks) + len(done_routine), len(tasks) + len(routine)
            threshold = user.streak_threshold or 75
            session.add(
                PerformanceHistory(
                    user_id=user.id,
                    day=DAY,
                    completed_tasks=completed,
                    total_tasks=total,
                    score=score(completed, total),
                    threshold=threshold,
                )
            )
            streak = session.get(Streak, user.id) or Streak(user_id=user.id, current=0, longest=0)
            session.add(streak)
            if meets_goal(completed, total, threshold):
                streak.current += 1
                streak.longest = max(streak.longest, streak.current)
                streak.last_activity_date = DAY
            else:
                streak.current = 0
            for step in done_routine:
                step.completed, step.completed_at = False, None
            unfinished = [t for t in tasks if t not in done_tasks]
            if unfinished:
                next_day = DAY + dt.timedelta(days=1)
                next_plan = session.scalars(
                    sa.select(TodaysPlan).where(
                        TodaysPlan.user_id == user.id, TodaysPlan.plan_date == next_day
                    )
                ).one_or_none() or TodaysPlan(user_id=user.id, plan_date=next_day)
                session.add(next_plan)
                session.flush()
                for task in unfinished:
                    task.plan_id = next_plan.id
    seconds = time.perf_counter() - started
    return {
        "users": len(ids),
        "seconds": seconds,
        "sql_seconds": clock.seconds,
        "statements": clock.statements,
        "peak_rss_mb": peak_rss_mb(),
    }


def metered_phase(phase: str, url: str) -> tuple[dict[str, object], Writes]:
    """Run `phase` on the database at `url` in a process of its own, and what it wrote."""
    meter = WriteMeter(url, by_relation=True)
    meter.start()
    result = run_phase(__file__, "--phase", phase, "--database", url)
    return result, meter.stop()


def history_digest(url: str, limit: int | None) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = sa.select(User.id).order_by(User.id).limit(limit).scalar_subquery()
        rows = connection.execute(
            sa.select(
                PerformanceHistory.completed_tasks,
                PerformanceHistory.total_tasks,
                PerformanceHistory.score,
                sa.func.count(),
            )
            .where(PerformanceHistory.user_id.in_(ids))
            .group_by(
                PerformanceHistory.completed_tasks,
                PerformanceHistory.total_tasks,
                PerformanceHistory.score,
            )
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--naive-users", type=int, default=None, help="close only this many the naive way"
    )
    parser.add_argument("--url", default=None, help="a server to use instead of an embedded one")
    parser.add_argument("--phase", choices=["sweep", "naive", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "sweep":
        now = dt.datetime.fromisoformat(args.now) if args.now else NOW
        print(json.dumps(phase_sweep(args.database, now)))
        return
    if args.phase == "naive":
        print(json.dumps(phase_naive(args.database, args.naive_users)))
        return
    if args.phase == "baseline":
        print(json.dumps(phase_baseline(args.database)))
        return

    with server(args.url, quiet_writes=True) as server_url:
        seed_name = create_database(server_url)
        print(f"seeding {args.users:,} users (5 plan tasks, 5 routine steps each)...", flush=True)
        took = seed(database_url(server_url, seed_name), args.users)
        print(f"  seeded in {took:.1f} s")
        names = [create_database(server_url, template=seed_name) for _ in range(7)]
        try:
            (
                fast_url,
                naive_url,
                protected_url,
                baseline_url,
                midnight_url,
                boundary_url,
                plain_url,
            ) = (database_url(server_url, n) for n in names)
            protect(protected_url)
            plain_tables(plain_url)
            created_at_noon(midnight_url, boundaries=False)
            created_at_noon(boundary_url, boundaries=True)
            at_noon = ["--phase", "sweep", "--now", NOON_NOW.isoformat(), "--database"]
            midnight = run_phase(__file__, *at_noon, midnight_url)
            boundary = run_phase(__file__, *at_noon, boundary_url)
            same_day_closed = history_digest(midnight_url, None) == history_digest(
                boundary_url, None
            )
            fast, fast_writes = metered_phase("sweep", fast_url)
            baseline, baseline_writes = metered_phase("baseline", baseline_url)
            plain, plain_writes = metered_phase("baseline", plain_url)
            same_as_baseline = all(
                history_digest(fast_url, None) == history_digest(url, None)
                for url in (baseline_url, plain_url)
            )
            protected = run_phase(__file__, "--phase", "sweep", "--database", protected_url)
            effects = effects_of(protected_url)
            naive_args = ["--phase", "naive", "--database", naive_url]
            if args.naive_users:
                naive_args += ["--naive-users", str(args.naive_users)]
            naive = run_phase(__file__, *naive_args)
            same = history_digest(fast_url, args.naive_users) == history_digest(
                naive_url, args.naive_users
            )
        finally:
            for name in [*names, seed_name]:
                drop_database(server_url, name)

    fast_rate = fast["users"] / fast["seconds"]  # type: ignore[operator]
    naive_rate = naive["users"] / naive["seconds"]  # type: ignore[operator]
    print(
        f"sweep: {fast['users']:,} users, {fast['user_days']:,} user-days"
        f" in {fast['seconds']:.2f} s"
        f" = {fast_rate:,.0f} users/s, peak RSS {fast['peak_rss_mb']:.0f} MB"
    )
    print(
        f"  SQL {fast['sql_seconds']:.2f} s in {fast['statements']} statements,"
        f" Python {fast['seconds'] - fast['sql_seconds']:.2f} s"
    )  # type: ignore[operator]
    for statement, seconds in fast["top"]:  # type: ignore[attr-defined]
        print(f"    {seconds:6.2f} s  {statement}")
    print(
        f"per-user ORM: {naive['users']:,} users in {naive['seconds']:.2f} s"
        f" = {naive_rate:,.0f} users/s, peak RSS {naive['peak_rss_mb']:.0f} MB"
        f" (SQL {naive['sql_seconds']:.2f} s in {naive['statements']} statements)"
    )
    print(f"ratio: {fast_rate / naive_rate:.1f}x; same history rows: {same}")
    protected_rate = protected["users"] / protected["seconds"]  # type: ignore[operator]
    print(
        f"sweep with days off, vacations and freezes: {protected['users']:,} users"
        f" in {protected['seconds']:.2f} s = {protected_rate:,.0f} users/s"
        f" ({protected_rate / fast_rate:.0%} of the sweep without them); effects: {effects}"
    )
    for statement, seconds in protected["top"]:  # type: ignore[attr-defined]
        print(f"    {seconds:6.2f} s  {statement}")

    midnight_rate = midnight["users"] / midnight["seconds"]  # type: ignore[operator]
    boundary_rate = boundary["users"] / boundary["seconds"]  # type: ignore[operator]
    print(
        f"users' own day boundaries: every day at midnight {midnight['users']:,} users in"
        f" {midnight['seconds']:.2f} s = {midnight_rate:,.0f} users/s; random day_starts_at"
        f" {boundary['users']:,} in {boundary['seconds']:.2f} s = {boundary_rate:,.0f} users/s"
        f" ({boundary_rate / midnight_rate:.0%}; goal >= 90%); same rows: {same_day_closed}"
    )

    days = int(fast["user_days"])  # type: ignore[call-overload]
    sides = [
        ("sweep", fast, fast_writes),
        ("baseline", baseline, baseline_writes),
        ("plain", plain, plain_writes),
    ]
    costs = []
    for _, run, writes in sides:
        closed = int(run["user_days"])  # type: ignore[call-overload]
        per = writes.per(closed)
        per["time_us"] = 1e6 * float(run["seconds"]) / closed  # type: ignore[arg-type]
        per["client_cpu_ms"] = 1e3 * float(run["client_cpu_seconds"]) / closed  # type: ignore[arg-type]
        costs.append(per)
    print(
        "cost per closed user-day, the sweep beside a plain set-based SQL baseline of the same"
        f" rules (same history: {same_as_baseline}), run on the sweep's tables ('baseline') and"
        " on the tables as issue 21 measured them, before migration 0021's fillfactors ('plain'):"
    )
    print(f"  {'':<18}{'sweep':>10}{'baseline':>10}{'ratio':>8}{'plain':>10}{'ratio':>8}")
    for label, key in (
        ("time (us)", "time_us"),
        ("WAL (bytes)", "wal_bytes"),
        ("server CPU (ms)", "cpu_ms"),
        ("client CPU (ms)", "client_cpu_ms"),
        ("rows written", "rows"),
        ("index entries", "index_entries"),
    ):
        mine, base, old = (cost[key] for cost in costs)
        print(
            f"  {label:<18}{mine:>10,.2f}{base:>10,.2f}{mine / base:>7.2f}x"
            f"{old:>10,.2f}{mine / old:>7.2f}x"
        )
    print(
        "  checkpoints during the measurement: "
        + ", ".join(f"{name} {writes.checkpoints}" for name, _, writes in sides)
    )
    print("  the baseline's statements (wall time, both connections):")
    for statement, seconds in baseline["top"]:  # type: ignore[attr-defined]
        print(f"    {seconds:6.2f} s  {statement}")
    for name, run, writes in sides[1:]:
        print(f"  WAL bytes per user-day by relation (of which full-page images), sweep | {name}:")
        for line in wal_by_relation_lines(
            (fast_writes, days),
            (writes, int(run["user_days"])),  # type: ignore[call-overload]
        ):
            print(f"    {line}")
    for name, _, writes in sides:
        print(f"  {name} rows per table (inserted, updated, of which HOT, deleted):")
        for table, counts in sorted(writes.by_table.items()):
            print(f"    {table:<22}" + "".join(f"{n:>10,}" for n in counts))


if __name__ == "__main__":
    main()
