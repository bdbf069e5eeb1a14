"""Shared plumbing of the benchmarks: a throwaway server, databases cloned from a seed, timing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
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

# For the benchmarks that meter writes (`WriteMeter`) on a server of their own: no checkpoint
# but the meter's own during a measured phase (one in the middle brings every page's full image
# back into the WAL: measured, the same sweep read 4.9 or 7.2 KB a user-day by whether one fell
# in it), and no autovacuum of an earlier phase's tables in the WAL and CPU of the next (the
# seeds VACUUM ANALYZE explicitly).
QUIET_WRITES = {"max_wal_size": "64GB", "checkpoint_timeout": "1h", "autovacuum": "off"}


@contextlib.contextmanager
def server(
    url: str | None, *, quiet_writes: bool = False, shared_buffers: str | None = None
) -> Iterator[str]:
    """A libpq URL of a server to create databases on: `url`, or a fresh embedded one
    (`quiet_writes`: with the QUIET_WRITES settings; `shared_buffers`: that much instead of the
    default 128 MB, which takes a restart; a server you name keeps its own)."""
    if url:
        yield libpq_url(url)
        return
    with tempfile.TemporaryDirectory(prefix="planner-bench-") as folder:
        pgdata = Path(folder) / "pg"
        started = start_embedded_postgres(pgdata)
        settings = {**(QUIET_WRITES if quiet_writes else {})}
        if shared_buffers:
            settings["shared_buffers"] = shared_buffers
        if settings:
            with psycopg.connect(started, autocommit=True) as connection:
                for name, value in settings.items():
                    connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                connection.execute("SELECT pg_reload_conf()")
            if shared_buffers:
                from embedded_postgres._commands import pg_ctl

                # pg_ctl restart keeps the server's options (its socket folder); the library
                # runs it as this user when we are root.
                user = "embedded_postgres" if os.geteuid() == 0 else None
                pg_ctl(["-w", "-l", str(pgdata / "log"), "restart"], pgdata=pgdata, user=user)
            print(
                "bench server: " + ", ".join(f"{k} = {v}" for k, v in settings.items()),
                flush=True,
            )
        yield started


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


# --- what a unit of work costs the database -----------------------------------------------------

_TABLE_WRITES = """
SELECT s.relname, s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd, s.n_tup_del,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid) AS indexes
  FROM pg_stat_user_tables s
"""


# Checkpoints begun so far (PostgreSQL 17 moved the counters to pg_stat_checkpointer).
_CHECKPOINTS = {
    False: "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
    True: "SELECT num_timed + num_requested FROM pg_stat_checkpointer",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu_seconds(postmaster: int) -> float:
    """CPU time of the server: the postmaster (with its children that have exited and been
    reaped) and every live child. Linux only; the server must run on this machine."""
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: int) -> list[str]:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()  # after "pid (comm) "

    own = fields(postmaster)
    total = sum(int(own[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = fields(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(child[1]) == postmaster:  # ppid
            total += int(child[11]) + int(child[12])
    return total / tick


@dataclasses.dataclass
class Writes:
    """What a unit of work cost the database: WAL bytes, the server's CPU seconds, and the rows
    and index entries written (an index entry for each insert and each update that is not HOT,
    in every index of the table: partial indexes that skip the row make it an upper bound)."""

    wal_bytes: int = 0
    cpu_seconds: float = 0.0
    checkpoints: int = 0  # begun during the measurement (the meter's own is before it)
    # WAL bytes by relation (tables and indexes; "(no block)": commit records and the like) and
    # the part of them that is full-page images: with `WriteMeter(by_relation=True)`.
    wal_by_relation: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    rows: int = 0
    index_entries: int = 0
    by_table: dict[str, tuple[int, int, int, int]] = dataclasses.field(default_factory=dict)

    def per(self, units: int) -> dict[str, float]:
        return {
            "wal_bytes": self.wal_bytes / units,
            "cpu_ms": self.cpu_seconds * 1000 / units,
            "rows": self.rows / units,
            "index_entries": self.index_entries / units,
        }


class WriteMeter:
    """Measures `Writes` between `start()` and `stop()` on a server doing nothing else: a
    CHECKPOINT first (so full-page images are counted alike in every run), then the WAL position,
    the server's CPU and the tables' write counters."""

    def __init__(self, url: str, *, by_relation: bool = False) -> None:
        self._url = url
        self._by_relation = by_relation  # needs pg_walinspect (PostgreSQL 16+, a superuser)

    def _read(self) -> tuple[int, float, int, dict[str, tuple[int, ...]]]:
        with psycopg.connect(self._url, autocommit=True) as c:
            c.execute("SELECT pg_stat_force_next_flush()")
            time.sleep(0.2)
            c.execute("SELECT pg_stat_clear_snapshot()")
            lsn = c.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]  # type: ignore[index]
            backend = c.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
            tables = {row[0]: tuple(row[1:]) for row in c.execute(_TABLE_WRITES)}
            checkpoints = c.execute(_CHECKPOINTS[c.info.server_version >= 170000]).fetchone()[0]  # type: ignore[index]
        return int(lsn), _server_cpu_seconds(postmaster), int(checkpoints), tables

    def start(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as c:
            c.execute("CHECKPOINT")
        self._before = self._read()

    def stop(self) -> Writes:
        lsn, cpu, checkpoints, tables = self._read()
        lsn0, cpu0, checkpoints0, tables0 = self._before
        writes = Writes(
            wal_bytes=lsn - lsn0, cpu_seconds=cpu - cpu0, checkpoints=checkpoints - checkpoints0
        )
        for name, (ins, upd, hot, dele, indexes) in tables.items():
            ins0, upd0, hot0, del0, _ = tables0.get(name, (0, 0, 0, 0, 0))
            d_ins, d_upd, d_hot, d_del = ins - ins0, upd - upd0, hot - hot0, dele - del0
            if d_ins or d_upd or d_del:
                writes.by_table[name] = (d_ins, d_upd, d_hot, d_del)
                writes.rows += d_ins + d_upd + d_del
                writes.index_entries += (d_ins + d_upd - d_hot) * int(indexes)
        if self._by_relation:
            with psycopg.connect(self._url, autocommit=True) as c:
                c.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
                rows = c.execute(_WAL_BY_RELATION, {"start": lsn0, "end": lsn}).fetchall()
                c.execute("DROP EXTENSION pg_walinspect")
            writes.wal_by_relation = {str(name): (int(b), int(f)) for name, b, f in rows}
            counted = sum(b for b, _ in writes.wal_by_relation.values())
            writes.wal_by_relation["(no block)"] = (writes.wal_bytes - counted, 0)
        return writes


# Each WAL record's bytes go to the relation of its first block; full-page images to each
# block's own relation.
_WAL_BY_RELATION = """
WITH blocks AS (
    SELECT b.*, sum(coalesce(b.block_fpi_length, 0)) OVER record AS record_fpi,
           min(b.block_id) OVER record AS first_block
      FROM pg_get_wal_block_info('0/0'::pg_lsn + %(start)s::numeric,
                                 '0/0'::pg_lsn + %(end)s::numeric, false) AS b
    WINDOW record AS (PARTITION BY b.start_lsn)
)
SELECT coalesce(c.relname, CASE WHEN b.reldatabase = d.oid THEN 'relfilenode ' || b.relfilenode
                                ELSE '(other databases)' END) AS relation,
       sum(CASE WHEN b.block_id = b.first_block THEN b.record_length - b.record_fpi ELSE 0 END
           + coalesce(b.block_fpi_length, 0)) AS bytes,
       sum(coalesce(b.block_fpi_length, 0)) AS fpi_bytes
  FROM blocks AS b
  JOIN pg_database d ON d.datname = current_database()
  LEFT JOIN pg_class c ON c.relfilenode = b.relfilenode AND b.reldatabase = d.oid
 GROUP BY 1
 ORDER BY 2 DESC
"""


def wal_by_relation_lines(
    left: tuple[Writes, int], right: tuple[Writes, int], *, limit: int | None = None
) -> list[str]:
    """WAL bytes per unit by relation, full-page images in brackets, `left | right` (each a
    `WriteMeter(by_relation=True)` measurement and its count of units), the relations where the
    two differ most first."""
    per_unit = [
        {name: (b / units, f / units) for name, (b, f) in writes.wal_by_relation.items()}
        for writes, units in (left, right)
    ]
    mine, theirs = per_unit
    relations = sorted(
        mine.keys() | theirs.keys(),
        key=lambda r: -abs(mine.get(r, (0, 0))[0] - theirs.get(r, (0, 0))[0]),
    )
    lines = []
    for relation in relations[:limit]:
        (mine_b, mine_f), (base_b, base_f) = (side.get(relation, (0, 0)) for side in per_unit)
        lines.append(
            f"{relation:<34}{mine_b:>8,.0f} ({mine_f:>5,.0f}) | {base_b:>8,.0f} ({base_f:>5,.0f})"
        )
    return lines
