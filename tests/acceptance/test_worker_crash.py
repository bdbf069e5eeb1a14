"""A worker killed in the middle of an export: nothing half-written shows, the job is not stuck,
the partial file does not stay, and one burst run after the crash completes the export exactly
once (a burst worker hands back the jobs of dead workers before it starts)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import sqlalchemy as sa

from planner_jobs.db.engine import create_engine
from planner_jobs.jobs.exports import request_export
from tests.acceptance.conftest import Cli
from tests.data import add_user, utc

STALLED_AFTER = 3  # seconds: how long the recovery run waits for a silent worker


def test_an_export_interrupted_by_a_dead_worker_completes_once(
    cli: Cli, database_url: str, processes: list, tmp_path: Path
) -> None:
    engine = create_engine(database_url)
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
        c.execute(
            sa.text(
                "INSERT INTO tasks (user_id, title, notes) SELECT :u, 'task ' || n,"
                " repeat(md5(n::text), 4) FROM generate_series(1, 400000) AS n"
            ),
            {"u": user},
        )
    export = request_export(engine, user, "json").job

    worker = cli.start("worker", "--queue", "exports")
    processes.append(worker)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as c:
            if c.scalar(sa.text("SELECT status FROM export_jobs")) == "processing":
                break
        time.sleep(0.05)
    time.sleep(0.5)  # well into writing the file
    worker.send_signal(signal.SIGKILL)
    worker.communicate()

    data_dir = tmp_path / "var"
    exports_dir, staging = data_dir / "exports", data_dir / "staging"
    assert not exports_dir.exists() or not any(p.is_file() for p in exports_dir.rglob("*"))
    [partial] = staging.iterdir()  # what the dead attempt was writing
    assert partial.name == f".export-{export.id}"
    assert partial.stat().st_size > 0
    build = sa.text("SELECT status FROM procrastinate_jobs WHERE task_name = 'exports.build'")
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT status FROM export_jobs")) == "processing"
        assert c.scalar(build) == "doing"
    time.sleep(STALLED_AFTER + 0.5)  # the dead worker's heartbeat is now older than that

    cli.environment["PLANNER_STALLED_AFTER"] = str(STALLED_AFTER)
    result = cli("worker", "--burst", "--queue", "exports", "--queue", "notifications", timeout=120)

    assert result.returncode == 0, result.stderr
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT status, storage_key FROM export_jobs WHERE id = :i"), {"i": export.id}
        ).one()
        ready = c.scalar(sa.text("SELECT count(*) FROM notifications WHERE source = 'export'"))
        assert c.scalar(build) == "succeeded"
    assert row.status == "complete"
    files = [p.relative_to(exports_dir).as_posix() for p in exports_dir.rglob("*") if p.is_file()]
    assert files == [row.storage_key] == [f"{user}/{export.id}.json"]
    assert list(staging.iterdir()) == []
    assert ready == 1
    engine.dispose()
