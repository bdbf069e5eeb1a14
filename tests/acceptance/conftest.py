"""Acceptance tests run `planner-jobs` as a separate process, the way an operator does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pgbouncer import PgBouncer

COMMAND = [sys.executable, "-m", "planner_jobs"]


@dataclass
class Cli:
    environment: dict[str, str]

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, *args],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
        """The command running; its output in a pipe, or in the file `log` for a process that
        logs more than a pipe holds before the test reads it (a full pipe blocks it)."""
        output = log.open("w", encoding="utf-8") if log is not None else subprocess.PIPE
        try:
            return subprocess.Popen(
                [*COMMAND, *args],
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
        finally:
            if log is not None:
                output.close()  # type: ignore[union-attr]  # the child holds its own copy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("PLANNER_")
    }
    environment.update(PLANNER_DATA_DIR=str(tmp_path / "var"), PLANNER_PORT=str(free_port()))
    environment.update(variables)
    return environment


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    """The CLI on this test's migrated database."""
    return Cli(base_environment(tmp_path, PLANNER_DATABASE_URL=database_url))


def wait_for_http(url: str, *, within: float) -> tuple[int, float]:
    """(status, seconds waited) of the first answer from `url`."""
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own URL)
                return response.status, time.monotonic() - started
        except OSError:
            if time.monotonic() - started > within:
                raise
            time.sleep(0.1)


def stop(process: subprocess.Popen[str], *, within: float = 15) -> tuple[int, float, str]:
    """SIGTERM the process: (exit code, seconds it took, its output)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=within + 5)
    return process.returncode, time.monotonic() - started, output


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; killed if the test leaves them running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("planner-jobs: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


__all__ = ["Cli", "Mapping", "assert_one_line_error", "base_environment", "stop", "wait_for_http"]


@pytest.fixture(scope="session")
def pgbouncer(server_url: str) -> Iterator[PgBouncer]:
    """A real PgBouncer in transaction pooling mode in front of the test server."""
    with PgBouncer(server_url) as bouncer:
        yield bouncer
