"""Benchmark: a year of history (issue 21, point 4). The rollover and an export on a database
holding one simulated year for USERS users, beside the same users on a database holding none;
then the daily prune tasks on the year, watched for how long they hold their locks.

    python bench/history.py [--users 100000] [--shared-buffers 4GB] [--url postgresql://...]

Two databases get the same users (created a year ago, due at the same midnight, each with a plan
of 5 tasks, 3 done, a 5-step routine, 3 done, and a running streak, as in `rollover.py`) and one
more user with 100,000 tasks to export (as in `export.py`). The "year" database also holds what a
year leaves behind under the retention rules: 365 `performance_history` rows per user (kept
forever), and 8 days of notifications (2 per user a day, each with its delivered push; the
oldest day past the week they are kept, so the prune has a day to delete), of the job engine's
finished jobs (the three per-minute ticks and a delivery job per 500 notifications; the oldest
day past their week) and of per-minute job counts.

The embedded server gets `shared_buffers = 4GB` (a sixth of this machine's memory; the year's
database takes 5.5 GB): on PostgreSQL's default of 128 MB the month's partition of the history's
primary key (110 MB at the month's end) does not stay in memory, and the rollover on the year
read 0.83x instead of 0.91-0.98x (`docs/decisions.md`).

On each database: the rollover sweep of the due users, closing the last day of a month (the
history is partitioned by month: its worst night) (users/s, WAL per user-day after a
CHECKPOINT) and a JSON export of the user with 100,000 tasks (rows/s, the median of 3 builds, the
two databases taking turns), side by side (goal: the year within 10 % of none). Then on the
year: `notifications.prune`, `maintenance.prune_finished_jobs` and `tokens.cleanup`, each run
as the worker runs it, while a sampler reads `pg_stat_activity` every 20 ms: the longest open
transaction of any connection but the client's (every lock the prune takes is held at most that
long; goal <= 1 s) and the longest wait of any connection on a lock, while a client raises a
notification and completes a task in a short transaction every 10 ms (its slowest transaction
is printed too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from _support import (
    WriteMeter,
    Writes,
    create_database,
    database_url,
    drop_database,
    run_phase,
    server,
    vacuum_analyze,
    wal_by_relation_lines,
)

# The date the rollover closes: the last of a month, when its month's partition of the history
# already holds 30 days of each user's (migration 0024), the month's slowest night.
DAY = dt.date(2026, 3, 31)
NOW = dt.datetime(2026, 4, 1, 0, 0, 30, tzinfo=dt.UTC)  # 30 s after everybody's midnight
EXPORT_TASKS = 100_000
EXPORT_ROUNDS = 3

USERS = """
INSERT INTO users (email, timezone, created_at, rollover_next_date, rollover_due_at,
                   rollover_zone)
    SELECT 'user' || n || '@example.com', 'UTC', %(day)s::date - 365, %(day)s::date,
           (%(day)s::date + 1)::timestamp AT TIME ZONE 'UTC', 'UTC'
      FROM generate_series(1, %(users)s) AS n;
INSERT INTO todays_plans (user_id, plan_date) SELECT id, %(day)s FROM users;
INSERT INTO tasks (user_id, plan_id, title, completed, completed_at)
    SELECT p.user_id, p.id, 'task ' || k, k <= 3,
           CASE WHEN k <= 3 THEN %(day)s::date + time '12:00' END
      FROM todays_plans p, generate_series(1, 5) AS k;
INSERT INTO daily_routines (user_id, name) SELECT id, 'morning' FROM users;
INSERT INTO routine_tasks (routine_id, title, position, completed, completed_at)
    SELECT r.id, 'step ' || k, k, k <= 3, CASE WHEN k <= 3 THEN %(day)s::date + time '12:00' END
      FROM daily_routines r, generate_series(1, 5) AS k;
INSERT INTO streaks (user_id, current, longest)
    SELECT id, 1 + abs(hashtext(id::text)) %% 20, 20 FROM users;
INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)
    SELECT id, 'https://push.example.com/' || id, 'key', 'auth' FROM users;
INSERT INTO users (email, timezone, created_at, rollover_next_date, rollover_due_at,
                   rollover_zone)
    VALUES ('exporter@example.com', 'UTC', %(day)s::date - 365, %(day)s::date + 30,
            (%(day)s::date + 31)::timestamp AT TIME ZONE 'UTC', 'UTC');
INSERT INTO todays_plans (user_id, plan_date)
    SELECT u.id, %(day)s::date - 100 + n FROM users u, generate_series(0, 99) AS n
     WHERE u.email = 'exporter@example.com';
INSERT INTO tasks (user_id, plan_id, title, notes, completed, completed_at)
    SELECT p.user_id, p.id, 'Task number ' || n || ', with "quotes"',
           CASE WHEN n %% 3 = 0 THEN 'Notes for task ' || n END, n %% 2 = 0,
           CASE WHEN n %% 2 = 0 THEN p.plan_date + time '10:00' END
      FROM generate_series(1, %(export_tasks)s) AS n
      JOIN users u ON u.email = 'exporter@example.com'
      JOIN todays_plans p ON p.user_id = u.id AND p.plan_date = %(day)s::date - 100 + n %% 100
"""

# What a year leaves: the history (kept forever), and 8 days of what is kept a week.
YEAR = """
SELECT planner_history_months(ARRAY(
           SELECT generate_series(%(day)s::date - 365, %(day)s::date, interval '1 day')::date));
INSERT INTO performance_history
       (user_id, day, completed_tasks, total_tasks, score, threshold, streak_effect)
    SELECT u.id, d::date, 7, 10, 70.00, 75, 'reset'
      FROM (SELECT id FROM users ORDER BY id) AS u,
           generate_series(%(day)s::date - 365, %(day)s::date - 1, interval '1 day') AS d
     ORDER BY u.id, d;
INSERT INTO notifications (user_id, body, source, created_at, drained_at)
    SELECT u.id, '{"title":"Call the dentist","body":"Due now"}', 'reminder', at, at
      FROM users u,
           generate_series(%(recent)s - interval '8 days', %(recent)s - interval '1 minute',
                           interval '12 hours') AS at;
INSERT INTO push_deliveries (notification_id, subscription_id, status, created_at, delivered_at)
    SELECT n.id, s.id, 'delivered', n.created_at, n.created_at
      FROM notifications n JOIN push_subscriptions s ON s.user_id = n.user_id;
INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, attempts)
    SELECT CASE WHEN t.name = 'notifications.deliver' THEN 'notifications' ELSE 'maintenance' END,
           t.name, '{}', 'succeeded', 1
      FROM generate_series(%(recent)s - interval '8 days', %(recent)s - interval '1 minute',
                           interval '1 minute') AS at,
           (VALUES ('rollover.sweep'), ('reminders.sweep'),
                   ('maintenance.retry_stalled_jobs')) AS t(name);
INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, attempts)
    SELECT 'notifications', 'notifications.deliver', '{}', 'succeeded', 1
      FROM generate_series(1, (SELECT count(*) / 500 FROM notifications));
INSERT INTO procrastinate_events (job_id, type, at)
    SELECT j.id, e.type::procrastinate_job_event_type,
           %(recent)s - interval '8 days' + (j.id %% 11520) * interval '1 minute' + e.after
      FROM procrastinate_jobs j,
           (VALUES ('deferred', interval '0'), ('started', interval '1 second'),
                   ('succeeded', interval '2 seconds')) AS e(type, after);
INSERT INTO job_counts (minute, queue, task, outcome, count)
    SELECT at, 'maintenance', t.name, 'succeeded', 1
      FROM generate_series(%(recent)s - interval '8 days', %(recent)s - interval '1 minute',
                           interval '1 minute') AS at,
           (VALUES ('rollover.sweep'), ('reminders.sweep')) AS t(name)
"""


def seed(url: str, users: int, *, year: bool) -> tuple[float, dict[str, int]]:
    """Seed the users (and the year); seconds taken and the tables' sizes in bytes."""
    from planner_jobs.db.engine import create_engine
    from planner_jobs.db.migrate import migrate

    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    started = time.perf_counter()
    parameters = {
        "users": users,
        "day": DAY,
        "recent": dt.datetime.now(dt.UTC),
        "export_tasks": EXPORT_TASKS,
    }
    with psycopg.connect(url) as connection:
        for statement in USERS.split(";") + (YEAR.split(";") if year else []):
            connection.execute(statement, parameters)
            connection.commit()
    vacuum_analyze(url)
    with psycopg.connect(url) as connection:
        sizes = dict(
            connection.execute(
                "SELECT relname::text, pg_total_relation_size(oid) FROM pg_class"
                " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
                " ORDER BY 2 DESC LIMIT 6"
            ).fetchall()
        )
    return time.perf_counter() - started, sizes


def phase_sweep(url: str) -> dict[str, object]:
    from planner_jobs.db.engine import create_engine
    from planner_jobs.jobs.rollover import sweep

    engine = create_engine(url)
    started = time.perf_counter()
    summary = sweep(engine, now=NOW, default_threshold=75)
    return {"user_days": summary.user_days, "seconds": time.perf_counter() - started}


def phase_export(url: str, data_dir: str) -> dict[str, object]:
    """The export of the user with EXPORT_TASKS tasks, built as `export.py` builds it."""
    from export import phase_build

    with psycopg.connect(url) as connection:
        user = connection.execute(
            "SELECT id FROM users WHERE email = 'exporter@example.com'"
        ).fetchone()[0]  # type: ignore[index]
    return {"rows": EXPORT_TASKS, **phase_build(url, str(user), "json", data_dir)}


PRUNES = ("notifications.prune", "maintenance.prune_finished_jobs", "tokens.cleanup")


def phase_prune(url: str, task: str, data_dir: str) -> dict[str, object]:
    """Run one daily prune as the worker runs it (its catalogue runner, now)."""
    from planner_jobs.catalogue import periodic_named
    from planner_jobs.runtime import open_runtime
    from planner_jobs.settings import Settings

    settings = Settings(_env_file=None, database_url=url, data_dir=Path(data_dir))  # type: ignore[call-arg]
    spec = periodic_named(task)
    with open_runtime(settings, periodic=False) as runtime:
        started = time.perf_counter()
        line = spec.run(runtime, dt.datetime.now(dt.UTC), None).line()
        seconds = time.perf_counter() - started
    return {"line": line, "seconds": seconds}


class Watch:
    """While running: samples `pg_stat_activity` (the longest open transaction of each backend
    but the sampler's and the client's, the longest lock wait of any backend) and runs a client
    that raises a notification and completes a task, a short transaction every 10 ms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.longest_transaction = 0.0
        self.longest_lock_wait = 0.0
        self.client_transactions = 0
        self.client_slowest = 0.0

    def __enter__(self) -> Watch:
        self.threads = [
            threading.Thread(target=self._sample, daemon=True),
            threading.Thread(target=self._client, daemon=True),
        ]
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.stop.is_set():
                transaction, wait = connection.execute(
                    "SELECT coalesce(max(extract(epoch FROM now() - xact_start))"
                    "         FILTER (WHERE application_name <> 'bench client'), 0),"
                    "       coalesce(max(extract(epoch FROM now() - state_change))"
                    "         FILTER (WHERE wait_event_type = 'Lock'), 0)"
                    "  FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    "   AND backend_type = 'client backend'"
                ).fetchone()  # type: ignore[misc]
                self.longest_transaction = max(self.longest_transaction, float(transaction))
                self.longest_lock_wait = max(self.longest_lock_wait, float(wait))
                time.sleep(0.02)

    def _client(self) -> None:
        with psycopg.connect(self.url, application_name="bench client") as connection:
            users = [
                row[0] for row in connection.execute("SELECT id FROM users LIMIT 1000").fetchall()
            ]
            n = 0
            while not self.stop.is_set():
                user = users[n % len(users)]
                started = time.perf_counter()
                connection.execute(
                    'SELECT planner_notify(%s, \'{"title": "Hello"}\'::jsonb)', (user,)
                )
                connection.execute(
                    "UPDATE tasks SET completed = NOT completed WHERE id ="
                    " (SELECT id FROM tasks WHERE user_id = %s LIMIT 1)",
                    (user,),
                )
                connection.commit()
                self.client_slowest = max(self.client_slowest, time.perf_counter() - started)
                self.client_transactions += 1
                n += 1
                time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--url", default=None, help="a server to use instead of an embedded one")
    parser.add_argument(
        "--shared-buffers",
        default="4GB",
        help="the embedded server's shared_buffers (PostgreSQL's default: 128MB)",
    )
    parser.add_argument("--phase", choices=["sweep", "export", "prune"], help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "sweep":
        print(json.dumps(phase_sweep(args.database)))
        return
    if args.phase == "export":
        print(json.dumps(phase_export(args.database, args.data_dir)))
        return
    if args.phase == "prune":
        print(json.dumps(phase_prune(args.database, args.task, args.data_dir)))
        return

    results: dict[str, dict[str, object]] = {}
    prunes: dict[str, dict[str, object]] = {}
    measured: dict[str, tuple[Writes, int]] = {}  # the sweep's writes and user-days
    export_rates: dict[str, list[float]] = {"none": [], "year": []}  # rows/s of each build
    with (
        server(args.url, quiet_writes=True, shared_buffers=args.shared_buffers) as server_url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        names = {kind: create_database(server_url) for kind in ("none", "year")}
        try:
            for kind, name in names.items():
                url = database_url(server_url, name)
                history = "a year of" if kind == "year" else "no"
                print(f"seeding {args.users:,} users, {history} history...", flush=True)
                took, sizes = seed(url, args.users, year=kind == "year")
                print(f"  seeded in {took:.0f} s; largest tables (MB): " + ", ".join(
                    f"{table} {size / 1e6:,.0f}" for table, size in sizes.items()
                ), flush=True)  # fmt: skip
            for kind, name in names.items():
                url = database_url(server_url, name)
                meter = WriteMeter(url, by_relation=True)
                meter.start()
                swept = run_phase(__file__, "--phase", "sweep", "--database", url)
                writes = meter.stop()
                measured[kind] = (writes, int(swept["user_days"]))  # type: ignore[call-overload]
                results[kind] = {
                    **{f"sweep_{k}": v for k, v in swept.items()},
                    "wal_per_user_day": writes.wal_bytes / int(swept["user_days"]),  # type: ignore[call-overload]
                }
            # An export takes about a second: one build moved by 15-25 % between runs, so each
            # database's is built EXPORT_ROUNDS times, the two taking turns, and the median kept.
            for _ in range(EXPORT_ROUNDS):
                for kind, name in names.items():
                    exported = run_phase(
                        __file__, "--phase", "export", "--database",
                        database_url(server_url, name), "--data-dir", data_dir,
                    )  # fmt: skip
                    export_rates[kind].append(
                        int(exported["rows"]) / float(exported["seconds"])  # type: ignore[call-overload, arg-type]
                    )
            year_url = database_url(server_url, names["year"])
            for task in PRUNES:
                with Watch(year_url) as watch:
                    outcome = run_phase(
                        __file__,
                        *("--phase", "prune", "--database", year_url, "--task", task),
                        *("--data-dir", data_dir),
                    )
                prunes[task] = {
                    **outcome,
                    "longest_transaction": watch.longest_transaction,
                    "longest_lock_wait": watch.longest_lock_wait,
                    "client_transactions": watch.client_transactions,
                    "client_slowest": watch.client_slowest,
                }
        finally:
            for name in names.values():
                drop_database(server_url, name)

    print(f"{args.users:,} users due at one midnight; no history beside a year of it:")
    print(f"  {'':<34}{'no history':>14}{'a year':>14}{'ratio':>9}")
    none, year = results["none"], results["year"]
    rows = [
        ("rollover (users/s)", lambda r: int(r["sweep_user_days"]) / float(r["sweep_seconds"])),
        ("rollover WAL (bytes/user-day)", lambda r: float(r["wal_per_user_day"])),
    ]
    for label, value in rows:
        mine, base = value(year), value(none)
        print(f"  {label:<34}{base:>14,.0f}{mine:>14,.0f}{mine / base:>8.2f}x")
    base, mine = (statistics.median(export_rates[kind]) for kind in ("none", "year"))
    label = f"export, JSON (rows/s, median of {EXPORT_ROUNDS})"
    print(f"  {label:<34}{base:>14,.0f}{mine:>14,.0f}{mine / base:>8.2f}x")
    for kind in ("none", "year"):
        print(f"    {kind} builds: " + ", ".join(f"{rate:,.0f}" for rate in export_rates[kind]))
    print(
        "  rollover WAL bytes per user-day by relation (of which full-page images),"
        " no history | a year, top 8:"
    )
    for line in wal_by_relation_lines(measured["none"], measured["year"], limit=8):
        print(f"    {line}")
    print("daily prunes on the year (goal: no lock held over 1 s):")
    for task, p in prunes.items():
        print(
            f"  {task}: {p['seconds']:.2f} s ({p['line']}); longest open transaction"
            f" {p['longest_transaction']:.2f} s, longest lock wait of any connection"
            f" {p['longest_lock_wait']:.2f} s; a client's {p['client_transactions']} short"
            f" transactions meanwhile, the slowest {float(p['client_slowest']) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
