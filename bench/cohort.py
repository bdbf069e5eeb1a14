"""Benchmark: one time zone's whole cohort at midnight, closed by 1, 2 and 4 processes.

    python bench/cohort.py [--users 1000000] [--processes 1 2 4] [--url postgresql://...]

Seeds USERS users of one zone, all due at the same midnight (each with a plan of 5 tasks, 3
done, a 5-step routine, 3 done, and a running streak: `bench/rollover.py`'s users), clones the
seed once per process count, and closes each clone with that many `planner-jobs cron rollover`
processes started together (each sweeps on two connections, as a worker does). Reports users/s,
the server's CPU seconds and WAL per process count, and whether the processes waited on each
other: `pg_locks` is sampled every 20 ms during the run, and the longest wait seen (its
`waitstart`) is printed (goal: none over 100 ms). Then checks that every user-day was closed
exactly once (one history row per user, every user's open date the next one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from _support import WriteMeter, create_database, database_url, drop_database, server
from rollover import DAY, NOW, seed

WAITS = """
SELECT count(*), coalesce(max(extract(epoch FROM now() - waitstart)), 0)
  FROM pg_locks WHERE NOT granted AND waitstart IS NOT NULL
"""


class LockWaits:
    """Samples the server's lock waits every `every` seconds until stopped."""

    def __init__(self, url: str, every: float = 0.02) -> None:
        self._url, self._every = url, every
        self.longest = 0.0  # seconds, the longest wait seen
        self.samples = self.waiting_samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as c:
            while not self._stop.is_set():
                row = c.execute(WAITS).fetchone()
                assert row is not None
                self.samples += 1
                if row[0]:
                    self.waiting_samples += 1
                    self.longest = max(self.longest, float(row[1]))
                time.sleep(self._every)

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def close_cohort(url: str, processes: int, data_dir: str) -> dict[str, float]:
    environment = {
        **os.environ,
        "PLANNER_DATABASE_URL": url,
        "PLANNER_DATA_DIR": data_dir,
        "PLANNER_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "planner_jobs", "cron", "rollover", "--now", NOW.isoformat()]
    meter = WriteMeter(url)
    meter.start()
    with LockWaits(url) as waits:
        started = time.perf_counter()
        running = [
            subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        outputs = [process.communicate()[0] for process in running]
        seconds = time.perf_counter() - started
    writes = meter.stop()
    if any(process.returncode for process in running):
        sys.exit(f"a sweep failed: {outputs}")
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT (SELECT count(*) FROM users),"
            " (SELECT count(*) FROM performance_history WHERE day = %s),"
            " (SELECT count(DISTINCT user_id) FROM performance_history),"
            " (SELECT count(*) FROM users WHERE rollover_next_date = %s)",
            (DAY, DAY + dt.timedelta(days=1)),
        ).fetchone()
    assert row is not None
    users, rows, distinct, moved_on = row
    return {
        "seconds": seconds,
        "users": users,
        "exactly_once": float(rows == distinct == moved_on == users),
        "cpu": writes.cpu_seconds,
        "wal": writes.wal_bytes,
        "longest_wait": waits.longest,
        "waiting_share": waits.waiting_samples / max(waits.samples, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--url", default=None, help="a server to use instead of an embedded one")
    args = parser.parse_args()

    results = {}
    with (
        server(args.url, quiet_writes=True) as server_url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        seed_name = create_database(server_url)
        try:
            print(f"seeding {args.users:,} users of one zone, due at one midnight...", flush=True)
            took = seed(database_url(server_url, seed_name), args.users)
            print(f"  seeded in {took:.0f} s", flush=True)
            for processes in args.processes:
                name = create_database(server_url, template=seed_name)
                try:
                    results[processes] = close_cohort(
                        database_url(server_url, name), processes, data_dir
                    )
                finally:
                    drop_database(server_url, name)
                r = results[processes]
                print(f"  {processes} process(es): {r['seconds']:.1f} s", flush=True)
        finally:
            drop_database(server_url, seed_name)

    print(f"{args.users:,} users of one zone due at one midnight, closed by N processes:")
    print(
        f"  {'processes':>9}{'seconds':>9}{'users/s':>10}{'DB CPU s':>10}"
        f"{'WAL MB':>9}{'longest lock wait':>19}{'samples waiting':>17}{'exactly once':>14}"
    )
    for processes, r in results.items():
        print(
            f"  {processes:>9}{r['seconds']:>9.1f}{r['users'] / r['seconds']:>10,.0f}"
            f"{r['cpu']:>10.1f}{r['wal'] / 1e6:>9,.0f}{1000 * r['longest_wait']:>16.0f} ms"
            f"{r['waiting_share']:>16.1%}{'yes' if r['exactly_once'] else 'NO':>14}"
        )
    print("  goal: no lock wait over 100 ms; every user-day closed exactly once")


if __name__ == "__main__":
    main()
