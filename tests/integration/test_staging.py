"""The staging folder: an export's file is locked while written, and a dead attempt's file is
swept (its lock died with its process) while a live one's never is."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from planner_jobs.storage.port import TransientStorageError
from planner_jobs.storage.staging import StagingArea

HOLD = """
import sys, time, uuid
from pathlib import Path
from planner_jobs.storage.staging import StagingArea
with StagingArea(Path(sys.argv[1])).open(uuid.UUID(sys.argv[2])) as staged:
    staged.file.write(b"half an export")
    staged.file.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def writer(folder: Path, export_id: uuid.UUID) -> subprocess.Popen[str]:
    """Another process writing an export's staging file (and holding its lock)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), str(export_id)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    return process


def end(process: subprocess.Popen[str]) -> None:
    """SIGKILL, as a crash would."""
    process.kill()
    process.communicate()


def test_a_live_attempts_file_stays_and_a_dead_ones_is_swept(tmp_path: Path) -> None:
    staging = StagingArea(tmp_path)
    live, dead = uuid.uuid4(), uuid.uuid4()
    alive = writer(tmp_path, live)
    killed = writer(tmp_path, dead)
    try:
        end(killed)

        removed = staging.sweep()

        assert removed == 1
        assert [p.name for p in tmp_path.iterdir()] == [f".export-{live}"]
        with pytest.raises(TransientStorageError, match="another attempt"), staging.open(live):
            pass
    finally:
        end(alive)
    assert staging.sweep() == 1
    assert list(tmp_path.iterdir()) == []


def test_a_retry_takes_over_the_file_of_its_dead_attempt(tmp_path: Path) -> None:
    staging = StagingArea(tmp_path)
    export = uuid.uuid4()
    first = writer(tmp_path, export)
    end(first)

    with staging.open(export) as staged:
        assert staged.path == tmp_path / f".export-{export}"
        assert staged.file.read() == b""  # what the dead attempt wrote is gone
        staged.file.write(b"the whole export")
        assert staging.sweep() == 0  # never the file being written

    assert list(tmp_path.iterdir()) == []


def test_sweeping_a_folder_not_made_yet_is_nothing(tmp_path: Path) -> None:
    assert StagingArea(tmp_path / "none").sweep() == 0
