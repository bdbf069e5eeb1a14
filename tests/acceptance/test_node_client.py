"""A real client in another language: the main app's side in Node.js, with the `pg` package from
the npm registry (installed by this test in a temporary folder), calling `planner_notify()` and
`planner_request_export()` in its own transactions, while a worker runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict

from planner_jobs.db.engine import create_engine, libpq_url
from planner_jobs.push.keys import VapidKeys
from tests.acceptance.conftest import Cli, base_environment
from tests.data import add_user, utc
from tests.push_receiver import PushReceiver

SCRIPT = Path(__file__).parent / "node" / "main_app.js"


def needs(tool: str) -> str:
    """The tool's path; without it the test is skipped, except in CI (PLANNER_TEST_STRICT=1),
    whose own steps must provide it."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("PLANNER_TEST_STRICT") == "1":
            pytest.fail(f"{tool} is needed and not installed")
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="session")
def node_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the script and the `pg` package."""
    needs("node")
    npm = needs("npm")
    folder = tmp_path_factory.mktemp("node-main-app")
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    (folder / "package.json").write_text('{"private": true}')
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "pg@8"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    return folder


def node_connection(database_url: str) -> dict[str, object]:
    """What node-postgres needs to reach the test's database (a socket folder or a host)."""
    parts = conninfo_to_dict(libpq_url(database_url))
    with psycopg.connect(libpq_url(database_url)) as connection:
        port = int(connection.execute("SHOW port").fetchone()[0])  # type: ignore[index]
    return {
        "host": parts.get("host") or "127.0.0.1",
        "port": port,
        "user": parts.get("user") or "postgres",
        "password": parts.get("password") or "",
        "database": parts["dbname"],
    }


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_the_main_app_in_node_raises_notifications_and_exports_in_its_transactions(
    node_app: Path,
    database_url: str,
    tmp_path: Path,
    processes: list,
    through: str,
    request: pytest.FixtureRequest,
) -> None:
    """Directly, and with the main app and the worker behind a real PgBouncer in transaction
    pooling mode (the worker listening on its direct connection)."""
    engine = create_engine(database_url)
    keys = VapidKeys.generate()
    settings = {"PLANNER_DATABASE_URL": database_url}
    connection = node_connection(database_url)
    if through == "pgbouncer":
        bouncer = request.getfixturevalue("pgbouncer")
        settings = {
            "PLANNER_DATABASE_URL": bouncer.url(database_url),
            "PLANNER_DIRECT_DATABASE_URL": database_url,
        }
        connection.update(host="127.0.0.1", port=bouncer.port, user=bouncer.user, password="")
    with PushReceiver(vapid_public_key=keys.application_server_key) as receiver:
        with engine.begin() as c:
            user = add_user(c, created_at=utc("2026-03-01T00:00"))
            receiver.subscribe(c, user, "phone")
        worker = Cli(
            base_environment(
                tmp_path,
                **settings,
                PLANNER_PUSH_ALLOWED_HOSTS=receiver.host,
                PLANNER_VAPID_PRIVATE_KEY=keys.private_raw,
            )
        ).start("worker", "--queue", "notifications")
        processes.append(worker)
        wait_until_polling(engine)

        ran = subprocess.run(
            ["node", SCRIPT.name, json.dumps(connection), str(user)],
            cwd=node_app,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        out = json.loads(ran.stdout)
        deadline = time.time() + 10
        while not receiver.received and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # anything else would have arrived by now

        assert receiver.errors == []
        assert receiver.payloads("phone") == [{"title": "Hello from Node", "body": "é ✓"}]
        message = receiver.received[0]
        assert (message.headers["urgency"], message.headers["ttl"]) == ("high", "60")
        assert message.at - out["committedAt"] < 2  # the contract's 2 s from the commit
    assert out["conflict"]["code"] == "PJ409"
    assert "one export runs at a time" in out["conflict"]["message"]
    assert out["refused"]["code"] == "22023"
    assert out["refused"]["message"].startswith("topic: must be")
    with engine.connect() as c:
        kept = list(c.scalars(sa.text("SELECT id FROM notifications")))
        exports = c.execute(sa.text("SELECT id, format FROM export_jobs")).all()
    assert kept == [int(out["committed"])]  # the rolled-back one left nothing
    assert int(out["rolledBack"]) not in kept
    assert [(str(e.id), e.format) for e in exports] == [(out["export"], "json")]
    engine.dispose()


def wait_until_polling(engine: sa.Engine) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as c:
            if c.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'planner-jobs intake'"
                )
            ):
                time.sleep(0.2)
                return
        time.sleep(0.05)
    raise AssertionError("the worker did not start polling")
