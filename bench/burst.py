"""Benchmark: a reminder burst, 100,000 task reminders due in the same minute, raised and delivered
by running `planner-jobs worker` processes (issue 21, point 3).

    python bench/burst.py [--users 100000] [--processes 1 2] [--url postgresql://...] [--plain]

Seeds USERS users, each with one push subscription on the bench's receiver (`_receiver`, its own
process, HTTPS offering HTTP/2 and HTTP/1.1, as push services do; `--plain`: HTTP/1.1) and one
task. For each process count P, on a fresh clone of the seed: every task's `remind_at` is set to
the next whole minute M on the wall clock (at least 20 s ahead), P `planner-jobs worker
--concurrency 4` processes (every queue, periodic tasks on, as deployed) are started and left to
it: the `reminders.sweep` tick at M raises the notifications, the workers' intake drains them into
deliveries, the `notifications` queue delivers them. Nothing else is driven by the bench.

Prints, per process count, on the database's clock: when the last reminder was raised and the
last push accepted, counted from M (goal: all delivered within 60 s with one process, faster with
two), the delivery rate between the first and the last accepted push, the workers' CPU per
message, and the database server's CPU (when it runs on this machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # for tests.push_receiver
from tests.push_receiver import Browser, self_signed_certificate

from _receiver import receiver
from _support import (
    WriteMeter,
    cpu_seconds,
    create_database,
    database_url,
    drop_database,
    server,
    vacuum_analyze,
)

CONCURRENCY = 4  # jobs at once per worker process, as bench/push.py runs them
LEAD = dt.timedelta(seconds=20)  # the least time between the workers' start and the minute
TIMEOUT = 600  # seconds after the minute before the bench gives up

SEED = """
INSERT INTO users (email, timezone, created_at)
    SELECT 'user' || n || '@example.com', 'Europe/Paris', now() - interval '1 day'
      FROM generate_series(1, %(users)s) AS n;
INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)
    SELECT id, %(base)s || id, %(p256dh)s, %(auth)s FROM users;
INSERT INTO tasks (user_id, title) SELECT id, 'Call the dentist' FROM users
"""


def seed(url: str, users: int, origin: str, browser: Browser) -> None:
    from planner_jobs.db.engine import create_engine
    from planner_jobs.db.migrate import migrate

    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    with psycopg.connect(url) as connection:
        for statement in SEED.split(";"):
            connection.execute(
                statement,
                {
                    "users": users,
                    "base": f"{origin}/push/",
                    "p256dh": browser.p256dh,
                    "auth": browser.auth,
                },
            )
    vacuum_analyze(url)


def next_minute(connection: psycopg.Connection) -> dt.datetime:
    """The next whole minute on the database's clock at least LEAD ahead."""
    now: dt.datetime = connection.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    ahead = now + LEAD
    return ahead.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def burst(url: str, processes: int, users: int, env: dict[str, str]) -> dict[str, float]:
    """Arm every reminder at the next minute, run `processes` workers until all is delivered."""
    with psycopg.connect(url, autocommit=True) as connection:
        minute = next_minute(connection)
        connection.execute("UPDATE tasks SET remind_at = %s", (minute,))
        connection.execute("VACUUM ANALYZE tasks")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "planner_jobs", "worker", "--concurrency", str(CONCURRENCY)],
            env={**env, "PLANNER_DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    meter = WriteMeter(url)
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            wait_until(connection, minute)
            meter.start()
            cpu0 = [cpu_seconds(w.pid) for w in workers]
            delivered = wait_delivered(connection, users, minute, workers)
            cpu = sum(cpu_seconds(w.pid) - c for w, c in zip(workers, cpu0, strict=True))
            writes = meter.stop()
            raised_last, first, last = connection.execute(
                "SELECT extract(epoch FROM (SELECT max(created_at) FROM notifications) - %(m)s),"
                "       extract(epoch FROM min(delivered_at) - %(m)s),"
                "       extract(epoch FROM max(delivered_at) - %(m)s)"
                "  FROM push_deliveries WHERE status = 'delivered'",
                {"m": minute},
            ).fetchone()  # type: ignore[misc]
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    return {
        "delivered": delivered,
        "raised_last": float(raised_last),
        "first": float(first),
        "last": float(last),
        "worker_cpu": cpu,
        "server_cpu": writes.cpu_seconds,
        "wal_bytes": writes.wal_bytes,
    }


def wait_until(connection: psycopg.Connection, minute: dt.datetime) -> None:
    now: dt.datetime = connection.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    time.sleep(max(0.0, (minute - now).total_seconds() - 2))


def wait_delivered(
    connection: psycopg.Connection, users: int, minute: dt.datetime, workers: list[subprocess.Popen]
) -> int:
    deadline = time.monotonic() + TIMEOUT + (minute - dt.datetime.now(dt.UTC)).total_seconds()
    while True:
        delivered: int = connection.execute(
            "SELECT count(*) FROM push_deliveries WHERE status = 'delivered'"
        ).fetchone()[0]  # type: ignore[index]
        if delivered >= users:
            return delivered
        if any(w.poll() is not None for w in workers):
            sys.exit("a worker process exited during the burst")
        if time.monotonic() > deadline:
            sys.exit(f"only {delivered:,} of {users:,} delivered {TIMEOUT} s after the minute")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--url", default=None, help="a server to use instead of an embedded one")
    parser.add_argument("--plain", action="store_true", help="plain HTTP/1.1 to the receiver")
    args = parser.parse_args()

    from planner_jobs.push.keys import VapidKeys

    browser = Browser("bench")  # one key pair for all: the crypto cost is the same
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tls = None if args.plain else self_signed_certificate(Path(folder))
        if tls:  # trusted by the workers' libcurl
            os.environ["CURL_CA_BUNDLE"] = str(tls[0])
        with receiver(tls) as origin, server(args.url, quiet_writes=True) as server_url:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")},
                "PLANNER_DATA_DIR": folder,
                "PLANNER_PUSH_ALLOWED_HOSTS": origin.split("://")[1],
                "PLANNER_VAPID_PRIVATE_KEY": VapidKeys.generate().private_raw,
                "PLANNER_LOG_LEVEL": "WARNING",
            }
            seed_name = create_database(server_url)
            names: list[str] = []
            try:
                print(f"seeding {args.users:,} users, one subscription and one task each...")
                seed(database_url(server_url, seed_name), args.users, origin, browser)
                for processes in args.processes:
                    names.append(create_database(server_url, template=seed_name))
                    url = database_url(server_url, names[-1])
                    print(f"  {processes} worker process(es): waiting for the minute...")
                    results[processes] = burst(url, processes, args.users, env)
            finally:
                for name in [*names, seed_name]:
                    drop_database(server_url, name)

    print(
        f"{args.users:,} task reminders due at one minute M, each user one subscription"
        f" ({'HTTP/1.1' if args.plain else 'HTTPS, HTTP/2'}), worker processes of concurrency"
        f" {CONCURRENCY} (goal: all delivered within 60 s of M with one process):"
    )
    for processes, r in results.items():
        rate = r["delivered"] / max(r["last"] - r["first"], 1e-9)
        print(
            f"  {processes} process(es): last raised M+{r['raised_last']:.1f} s, first accepted"
            f" M+{r['first']:.1f} s, last accepted M+{r['last']:.1f} s;"
            f" {rate:,.0f} msg/s between them; workers' CPU {r['worker_cpu']:.0f} s"
            f" ({r['worker_cpu'] / r['delivered'] * 1e6:.0f} µs/message), database server's CPU"
            f" {r['server_cpu']:.0f} s ({r['server_cpu'] / r['delivered'] * 1e6:.0f} µs/message),"
            f" WAL {r['wal_bytes'] / r['delivered']:,.0f} bytes/message"
        )


if __name__ == "__main__":
    main()
