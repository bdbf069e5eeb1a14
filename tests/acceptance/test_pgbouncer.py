"""The whole service through a real PgBouncer in transaction pooling mode, as a main app at
scale runs it: `PLANNER_DATABASE_URL` names PgBouncer, `PLANNER_DIRECT_DATABASE_URL` the
database itself (migrations, the workers' LISTEN). The API, the workers, the cron, the CLI and
the main app's calls all go through PgBouncer, and it is checked that they did."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb

from planner_jobs.db.engine import create_engine, libpq_url
from planner_jobs.push.keys import VapidKeys
from tests.acceptance.conftest import Cli, base_environment, stop, wait_for_http
from tests.data import add_user
from tests.pgbouncer import PgBouncer
from tests.push_receiver import PushReceiver


def wait_for(check: object, *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        time.sleep(0.1)


def test_the_service_runs_through_pgbouncer_in_transaction_pooling_mode(
    pgbouncer: PgBouncer, empty_database_url: str, tmp_path: Path, processes: list
) -> None:
    direct = libpq_url(empty_database_url)
    pooled = pgbouncer.url(empty_database_url)
    keys = VapidKeys.generate()
    with PushReceiver(vapid_public_key=keys.application_server_key) as receiver:
        cli = Cli(
            base_environment(
                tmp_path,
                PLANNER_DATABASE_URL=pooled,
                PLANNER_DIRECT_DATABASE_URL=direct,
                PLANNER_PUSH_ALLOWED_HOSTS=receiver.host,
                PLANNER_VAPID_PRIVATE_KEY=keys.private_raw,
                PLANNER_LOG_FORMAT="json",
            )
        )
        cli.environment["PLANNER_PUBLIC_URL"] = (
            f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}"
        )
        migrated = cli("migrate")
        assert migrated.returncode == 0, migrated.stderr
        engine = create_engine(direct)
        with engine.begin() as c:
            three_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
            user = add_user(c, created_at=three_days_ago)
            receiver.subscribe(c, user, "phone")
        before = pgbouncer.transactions()
        log = tmp_path / "run.log"
        server = cli.start("run", log=log)
        processes.append(server)
        origin = f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}"
        wait_for_http(f"{origin}/readyz", within=60)

        # The main app, behind the same PgBouncer, raises a notification and an export.
        with psycopg.connect(pooled) as main_app:
            main_app.execute("SELECT planner_notify(%s, %s)", (user, Jsonb({"title": "pooled"})))
            export = main_app.execute("SELECT planner_request_export(%s, 'csv')", (user,))
            export_id = export.fetchone()[0]  # type: ignore[index]
        wait_for(
            lambda: {"title": "pooled"} in receiver.payloads("phone"),
            within=30,
            what="the notification's delivery",
        )
        token = cli("token", str(user)).stdout.strip()
        shown: dict[str, object] = {}

        def export_complete() -> bool:
            request = urllib.request.Request(  # noqa: S310 (our own URL)
                f"{origin}/api/exports/{export_id}", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                shown.update(json.loads(response.read()))
            return shown["status"] == "complete"

        wait_for(export_complete, within=60, what="the export")
        with urllib.request.urlopen(str(shown["downloadUrl"]), timeout=10) as download:  # noqa: S310
            assert download.status == 200
        rollover = cli("cron", "rollover")  # what the workers' ticks left (they close days too)
        status = cli("status", "--json")
        code, _, _ = stop(server)

    assert rollover.returncode == 0, rollover.stderr
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["exports"]["complete"] == 1
    assert code == 0, log.read_text()[-3000:]
    assert receiver.errors == []
    assert pgbouncer.transactions() - before > 50  # the work went through PgBouncer
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM performance_history")) == 3
    engine.dispose()
