from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from planner_jobs.cli import PROGRESS_BAR_FROM
from planner_jobs.db.engine import create_engine
from planner_jobs.push.keys import VapidKeys
from tests.acceptance.conftest import (
    COMMAND,
    Cli,
    assert_one_line_error,
    base_environment,
    free_port,
    stop,
    wait_for_http,
)

COMMANDS = [
    [],
    ["run"],
    ["migrate"],
    ["api"],
    ["worker"],
    ["cron"],
    ["cron", "rollover"],
    ["cron", "cleanup-tokens"],
    ["cron", "reminders"],
    ["export"],
    ["notify"],
    ["vapid-keys"],
    ["status"],
    ["jobs"],
    ["jobs", "queues"],
    ["jobs", "list"],
    ["jobs", "show"],
    ["jobs", "retry"],
    ["jobs", "cancel"],
    ["jobs", "schedule"],
    ["exports"],
    ["exports", "show"],
    ["token"],
    ["demo"],
    ["grant"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(tmp_path: Path, command: list[str]) -> None:
    result = Cli(base_environment(tmp_path))(*command, "--help")

    assert result.returncode == 0
    assert result.stdout.startswith("Usage: planner-jobs")


def test_migrate_creates_then_leaves_the_schema(empty_database_url: str, tmp_path: Path) -> None:
    cli = Cli(base_environment(tmp_path, PLANNER_DATABASE_URL=empty_database_url))

    first = cli("migrate")
    second = cli("migrate")

    assert first.returncode == 0, first.stderr
    assert "schema upgraded from revision none" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "schema is up to date" in second.stdout


def test_a_burst_worker_on_empty_queues_exits_zero(cli: Cli) -> None:
    result = cli("worker", "--burst", timeout=30)

    assert result.returncode == 0, result.stderr


def test_run_answers_healthz_then_stops_on_sigterm(cli: Cli, processes: list) -> None:
    process = cli.start("run")
    processes.append(process)
    port = cli.environment["PLANNER_PORT"]

    status, _ = wait_for_http(f"http://127.0.0.1:{port}/healthz", within=30)
    code, took, output = stop(process)

    assert status == 200
    assert code == 0, output
    assert took < 15
    assert "Traceback" not in output


@pytest.mark.slow
def test_run_on_the_embedded_default_answers_healthz(tmp_path: Path, processes: list) -> None:
    cli = Cli(base_environment(tmp_path))
    process = cli.start("run")
    processes.append(process)

    status, waited = wait_for_http(
        f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}/healthz", within=30
    )
    code, _, output = stop(process)

    assert status == 200
    assert waited < 30
    assert code == 0, output
    assert (tmp_path / "var" / "pg" / "PG_VERSION").exists()


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    cli = Cli(base_environment(tmp_path, PLANNER_DATABASE_URL="postgresql://nobody@127.0.0.1:9/db"))

    for command in (["migrate"], ["worker", "--burst"], ["run"]):
        assert_one_line_error(cli(*command), "cannot reach the database")


def test_a_port_in_use_is_one_line(cli: Cli, processes: list) -> None:
    first = cli.start("api")
    processes.append(first)
    wait_for_http(f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}/healthz", within=30)

    assert_one_line_error(cli("api"), "address already in use")
    stop(first)


def test_a_bad_setting_or_argument_is_one_line(tmp_path: Path) -> None:
    environment = base_environment(tmp_path, PLANNER_PORT="eighty")

    assert_one_line_error(Cli(environment)("migrate"), "PLANNER_PORT")
    assert_one_line_error(Cli(base_environment(tmp_path))("worker", "--queue", "x"), "--queue")
    assert_one_line_error(Cli(base_environment(tmp_path))("worker", "--concurrency", "0"))
    smtp = base_environment(tmp_path, PLANNER_SMTP_URL="smtp://ops:hunter2@mail.example:x")
    result = Cli(smtp)("worker", "--burst")
    assert_one_line_error(result, "PLANNER_SMTP_URL", "port")
    assert "hunter2" not in result.stderr
    production = base_environment(
        tmp_path,
        PLANNER_ENV="production",
        PLANNER_JWT_SECRET="j" * 32,
        PLANNER_SIGNING_SECRET="s" * 32,
        PLANNER_VAPID_PRIVATE_KEY="a key",
        PLANNER_VAPID_SUBJECT="mailto:ops@example.com",
        PLANNER_SMTP_URL="smtp://mail.example:587",
    )
    assert_one_line_error(Cli(production)("run"), "PLANNER_EMAIL_FROM must be set")


def test_workers_refuse_an_unmigrated_database(empty_database_url: str, tmp_path: Path) -> None:
    cli = Cli(base_environment(tmp_path, PLANNER_DATABASE_URL=empty_database_url))

    assert_one_line_error(cli("worker", "--burst"), "planner-jobs migrate")


def test_cron_rollover_closes_due_days_and_says_how_many(cli: Cli, database_url: str) -> None:
    run_sql(
        database_url,
        "INSERT INTO users (email, timezone, created_at) VALUES"
        " ('a@example.com', 'Asia/Kathmandu', '2026-03-05T08:00Z'),"
        " ('b@example.com', 'Nowhere/Special', '2026-03-07T08:00Z')",
    )

    result = cli("cron", "rollover", "--now", "2026-03-08T06:00:00Z")
    again = cli("cron", "rollover", "--now", "2026-03-08T06:00:00+00:00")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("closed 4 user-days for 2 users in ")
    assert "1 with an unknown time zone" in result.stdout
    assert again.stdout.startswith("closed 0 user-days for 0 users in ")


def test_cron_cleanup_tokens_says_how_many(cli: Cli) -> None:
    result = cli("cron", "cleanup-tokens", "--now", "2026-03-08T06:00:00Z")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cleared 0 expired password-reset tokens in ")


def test_cron_refuses_an_instant_without_offset(cli: Cli) -> None:
    assert_one_line_error(cli("cron", "rollover", "--now", "2026-03-08T06:00"), "UTC offset")
    assert_one_line_error(cli("cron", "rollover", "--now", "yesterday"), "ISO 8601")


def test_vapid_keys_prints_a_pair_that_loads(tmp_path: Path) -> None:
    result = Cli(base_environment(tmp_path))("vapid-keys")

    assert result.returncode == 0
    private = result.stdout.splitlines()[0].removeprefix("PLANNER_VAPID_PRIVATE_KEY=")
    public = result.stdout.splitlines()[1].split(": ")[1]
    assert VapidKeys.parse(private).application_server_key == public


def run_sql(database_url: str, statement: str, **parameters: object) -> Any:
    """Run one statement on the test's database, beside the CLI; return its first value."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as c:
            result = c.execute(sa.text(statement), parameters)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def a_user(database_url: str) -> str:
    return str(
        run_sql(database_url, "INSERT INTO users (email) VALUES ('cli@example.com') RETURNING id")
    )


def test_export_requests_an_export_and_prints_the_job(cli: Cli, database_url: str) -> None:
    user = a_user(database_url)

    first = cli("export", user, "--format", "csv")
    again = cli("export", user, "--format", "csv")
    other = cli("export", user, "--format", "json")

    assert first.returncode == 0, first.stderr
    job = json.loads(first.stdout)
    assert (job["format"], job["status"], job["downloadUrl"]) == ("csv", "pending", None)
    assert json.loads(again.stdout)["id"] == job["id"]
    assert_one_line_error(other, "already pending")
    assert_one_line_error(cli("export", user, "--format", "pdf"), "--format")
    assert_one_line_error(
        cli("export", user), "Missing option '--format'. Choose from: json, csv, markdown"
    )
    assert_one_line_error(cli("export", "not-a-uuid", "--format", "csv"), "USER_ID")
    assert_one_line_error(
        cli("export", "00000000-0000-0000-0000-000000000000", "--format", "csv"), "no user"
    )


def test_notify_queues_a_notification(cli: Cli, database_url: str) -> None:
    user = a_user(database_url)

    result = cli("notify", user, "--title", "Hello", "--body", "World", "--ttl", "60")
    again = cli("notify", user, "--title", "Hi", "--body", "W", "--dedupe-key", "k", "--topic", "t")
    twice = cli("notify", user, "--title", "Hi", "--body", "W", "--dedupe-key", "k")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"queued notification 1 for user {user}")
    assert again.stdout.startswith("queued notification 2 ")
    assert twice.stdout.startswith("queued notification 2 ")  # the key repeats: dropped
    queued = run_sql(
        database_url,
        "SELECT json_agg(json_build_object('body', planner_json_compact(body::jsonb), 'ttl', ttl,"
        " 'topic', topic,"
        " 'source', source, 'duplicates', duplicates) ORDER BY id) FROM notifications",
    )
    assert queued == [
        {
            "body": '{"body":"World","title":"Hello"}',
            "ttl": 60,
            "topic": None,
            "source": "cli",
            "duplicates": 0,
        },
        {
            "body": '{"body":"W","title":"Hi"}',
            "ttl": None,
            "topic": "t",
            "source": "cli",
            "duplicates": 1,
        },
    ]
    too_long = cli("notify", user, "--title", "x", "--body", "y" * 5000)
    assert_one_line_error(too_long, "at most 3993")
    assert_one_line_error(cli("notify", user, "--title", "x", "--body", "y", "--ttl", "-1"), "ttl")
    assert_one_line_error(
        cli("notify", user, "--title", "x", "--body", "y", "--urgency", "now"), "--urgency"
    )
    assert run_sql(database_url, "SELECT count(*) FROM notifications") == 2


def test_notify_refuses_a_user_that_does_not_exist(cli: Cli, database_url: str) -> None:
    nobody = "00000000-0000-0000-0000-000000000000"

    result = cli("notify", nobody, "--title", "Hello", "--body", "World")

    assert result.returncode == 1
    assert_one_line_error(result, f"no user {nobody}")
    assert run_sql(database_url, "SELECT count(*) FROM procrastinate_jobs") == 0


def test_notify_sends_a_declarative_message_with_navigate_and_checks_it(
    cli: Cli, database_url: str
) -> None:
    user = a_user(database_url)

    sent = cli("notify", user, "--title", "Hi", "--body", "B", "--navigate", "https://p.example/a")
    refused = cli("notify", user, "--title", "Hi", "--body", "B", "--navigate", "/a")

    assert sent.returncode == 0, sent.stderr
    assert run_sql(database_url, "SELECT body::jsonb FROM notifications") == {
        "web_push": 8030,
        "notification": {"title": "Hi", "body": "B", "navigate": "https://p.example/a"},
        "mutable": True,
    }
    assert_one_line_error(refused, "payload.notification.navigate: must be an absolute https:")
    assert run_sql(database_url, "SELECT count(*) FROM notifications") == 1


def test_cron_reminders_says_how_many(cli: Cli) -> None:
    result = cli("cron", "reminders", "--now", "2026-03-08T06:00:00Z")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("queued 0 reminders, skipped 0")


def test_a_worker_serves_its_metrics_when_asked(cli: Cli, processes: list) -> None:
    port = free_port()
    worker = cli.start("worker", "--metrics-port", str(port))
    processes.append(worker)

    status, _ = wait_for_http(f"http://127.0.0.1:{port}/metrics", within=30)
    stop(worker)

    assert status == 200


def test_cron_rollover_shows_progress_on_a_terminal_for_a_backfill(
    cli: Cli, database_url: str
) -> None:
    """A large sweep (a backfill after an outage) draws a progress bar when stderr is a terminal;
    stdout keeps the one-line summary."""
    users = PROGRESS_BAR_FROM
    run_sql(
        database_url,
        "INSERT INTO users (email, timezone, created_at) SELECT 'u' || n || '@example.com',"
        " 'Europe/Berlin', '2026-03-05T12:00Z' FROM generate_series(1, :n) AS n",
        n=users,
    )
    terminal, terminal_end = pty.openpty()
    chunks: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # Linux: the other end is closed and everything was read
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    try:
        result = subprocess.run(
            [*COMMAND, "cron", "rollover", "--now", "2026-03-08T06:00:00Z"],
            env=cli.environment,
            stdout=subprocess.PIPE,
            stderr=terminal_end,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.close(terminal_end)
        reader.join(timeout=10)
        os.close(terminal)
    drawn = b"".join(chunks)

    assert result.returncode == 0, drawn.decode(errors="replace")
    assert result.stdout.startswith(f"closed {3 * users} user-days for {users} users in ")
    screen = drawn.decode(errors="replace")
    assert "rolling over" in screen
    assert "100%" in screen


def test_grant_lets_a_role_call_the_way_in_and_an_unknown_role_is_one_line(
    cli: Cli, database_url: str
) -> None:
    engine = create_engine(database_url)
    role = f"pj_app_{os.getpid()}_{threading.get_ident() % 10_000}"
    with engine.begin() as c:
        c.execute(sa.text(f'CREATE ROLE "{role}"'))
    try:
        granted = cli("grant", role)
        again = cli("grant", role)
        unknown = cli("grant", "no_such_role_here")
        with engine.connect() as c:
            may = c.scalar(
                sa.text(
                    "SELECT has_function_privilege(:r, 'planner_notify(uuid, jsonb, text, text,"
                    " integer, text)', 'EXECUTE')"
                ),
                {"r": role},
            )
    finally:
        with engine.begin() as c:
            c.execute(sa.text(f'DROP OWNED BY "{role}"'))
            c.execute(sa.text(f'DROP ROLE "{role}"'))
        engine.dispose()

    assert granted.returncode == 0, granted.stderr
    assert granted.stdout.startswith(f"granted {role} EXECUTE on planner_notify()")
    assert again.returncode == 0, again.stderr
    assert may is True
    assert_one_line_error(unknown, "there is no role 'no_such_role_here'")
    assert unknown.returncode == 1
