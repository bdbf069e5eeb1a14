"""Shared plumbing of the benchmarks: a throwaway server, databases cloned from a seed, timing."""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from planner_jobs.db.embedded import start_embedded_postgres
from planner_jobs.db.engine import libpq_url


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """A libpq URL of a server to create databases on: `url`, or a fresh embedded one."""
    if url:
        yield libpq_url(url)
        return
    with tempfile.TemporaryDirectory(prefix="planner-bench-") as folder:
        yield start_embedded_postgres(Path(folder) / "pg")


def database_url(server_url: str, name: str) -> str:
    return libpq_url(make_url(server_url).set(database=name).render_as_string(False))


def create_database(server_url: str, *, template: str | None = None) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        clause = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{clause}')
    return name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def vacuum_analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SqlClock:
    """Wall time spent inside the database driver's execute calls of an engine."""

    def __init__(self, engine: Engine) -> None:
        self.seconds = 0.0
        self.statements = 0
        self.by_statement: dict[str, float] = {}
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        took = time.perf_counter() - conn.info.pop("bench_started")
        self.seconds += took
        self.statements += 1
        key = " ".join(statement.split())[:70]
        self.by_statement[key] = self.by_statement.get(key, 0.0) + took

    def top(self, n: int = 6) -> list[tuple[str, float]]:
        return sorted(self.by_statement.items(), key=lambda item: -item[1])[:n]


def run_phase(script: str, *args: str) -> dict[str, object]:
    """Run `script --phase ...` in a fresh process (so its peak RSS is its own); its JSON result."""
    completed = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        sys.exit(f"phase {args} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
