"""What an operator runs: `status`, `jobs ...`, `exports show`, `token`, JSON logs, and the demo a
newcomer watches, each as a separate process on a real database."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from planner_jobs.api.auth import user_id_from_token
from planner_jobs.catalogue import PERIODIC, build_job_app
from planner_jobs.db.engine import create_engine, libpq_url
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.settings import DEV_JWT_SECRET
from tests.acceptance.conftest import Cli, assert_one_line_error, stop, wait_for_http
from tests.acceptance.test_cli import a_user


def defer(database_url: str, task: str, **arguments: object) -> int:
    job_app = build_job_app(libpq_url(database_url), periodic=False)
    engine = create_engine(database_url)
    try:
        with engine.begin() as c:
            job = defer_in_transaction(c, job_app, task, **arguments)
    finally:
        engine.dispose()
    assert job is not None
    return job


def a_failed_job(cli: Cli, database_url: str) -> tuple[int, str]:
    """A notification for a user that is not there, run by a burst worker: (job id, the user)."""
    ghost = str(uuid.uuid4())
    job = defer(database_url, "notifications.send", userId=ghost, payload={"t": 1})
    worked = cli("worker", "--burst", "--queue", "notifications", timeout=60)
    assert worked.returncode == 0, worked.stderr
    return job, ghost


def test_a_failed_job_is_listed_shown_retried_and_refused_twice(
    cli: Cli, database_url: str
) -> None:
    job, ghost = a_failed_job(cli, database_url)

    listed = cli("jobs", "list", "--status", "failed", "--json")
    shown = cli("jobs", "show", str(job))
    shown_json = cli("jobs", "show", str(job), "--json")
    retried = cli("jobs", "retry", str(job))
    again = cli("jobs", "retry", str(job))
    cancelled = cli("jobs", "cancel", str(job), "--json")
    missing = cli("jobs", "show", "999999")

    assert listed.returncode == 0, listed.stderr
    assert [(j["id"], j["task"], j["status"]) for j in json.loads(listed.stdout)] == [
        (job, "notifications.send", "failed")
    ]
    assert shown.returncode == 0, shown.stderr
    assert f"job {job}  notifications.send  queue notifications  failed" in shown.stdout
    assert f"BadNotification: user_id: there is no user {ghost}" in shown.stdout
    assert "Traceback (most recent call last)" in shown.stdout
    assert re.search(r"^  \S+  deferred$", shown.stdout, re.MULTILINE)
    detail = json.loads(shown_json.stdout)
    assert [e["type"] for e in detail["events"]] == ["deferred", "started", "failed"]
    assert detail["args"] == {"userId": ghost, "payload": {"t": 1}}
    assert detail["failures"][0]["attempt"] == 1
    assert retried.stdout.strip() == f"job {job} (failed) is back in its queue"
    assert_one_line_error(again, f"job {job} is todo: only a failed")
    assert again.returncode == 1
    assert json.loads(cancelled.stdout) == {"job": job, "done": f"job {job} is cancelled"}
    assert_one_line_error(missing, "there is no job 999999")


def test_status_queues_and_schedule_in_text_and_json(cli: Cli, database_url: str) -> None:
    a_failed_job(cli, database_url)
    defer(database_url, "tokens.cleanup", timestamp=0)

    status = cli("status")
    status_json = cli("status", "--json")
    queues = cli("jobs", "queues", "--json")
    schedule = cli("jobs", "schedule", "--json")
    schedule_text = cli("jobs", "schedule")

    assert status.returncode == 0, status.stderr
    for heading in ("database", "queues", "workers", "schedule", "rollover", "exports", "pushes"):
        assert re.search(rf"^{heading}\b", status.stdout, re.MULTILINE), heading
    assert "password" not in status.stdout
    seen = json.loads(status_json.stdout)
    by_queue = {q["name"]: q for q in seen["queues"]}
    assert by_queue["notifications"]["counts"]["failed"] == 1
    assert by_queue["maintenance"]["counts"]["todo"] >= 1
    assert seen["revision"] == seen["head"]
    assert {q["name"] for q in json.loads(queues.stdout)} == {
        "exports",
        "notifications",
        "maintenance",
    }
    entries = json.loads(schedule.stdout)
    assert {e["task"] for e in entries} == {p.name for p in PERIODIC}
    assert all(e["next_tick"] for e in entries)
    assert "rollover.sweep" in schedule_text.stdout


def test_exports_show_prints_the_export_and_refuses_an_unknown_one(
    cli: Cli, database_url: str
) -> None:
    requested = json.loads(cli("export", a_user(database_url), "--format", "csv").stdout)

    shown = cli("exports", "show", requested["id"], "--json")
    text = cli("exports", "show", requested["id"])
    unknown = cli("exports", "show", str(uuid.UUID(int=7)))

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == requested
    assert re.search(r"^status\s+pending$", text.stdout, re.MULTILINE)
    assert_one_line_error(unknown, f"there is no export {uuid.UUID(int=7)}")


def test_token_prints_a_token_the_api_accepts_only_in_development(
    cli: Cli, database_url: str
) -> None:
    user = a_user(database_url)

    printed = cli("token", user, "--ttl", "60")
    production = Cli({**cli.environment, "PLANNER_ENV": "production"})("token", user)

    assert printed.returncode == 0, printed.stderr
    assert str(user_id_from_token(printed.stdout.strip(), secret=DEV_JWT_SECRET)) == user
    assert_one_line_error(production, "production")


def test_a_job_logs_its_id_task_queue_attempt_and_user_as_json(cli: Cli, database_url: str) -> None:
    ghost = str(uuid.uuid4())
    job = defer(database_url, "notifications.send", userId=ghost, payload={"t": 1})

    result = Cli({**cli.environment, "PLANNER_LOG_FORMAT": "json", "PLANNER_LOG_LEVEL": "DEBUG"})(
        "worker", "--burst", "--queue", "notifications"
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    about_job = [line for line in lines if line.get("job_id") == job]
    assert about_job, result.stderr
    for line in about_job:
        assert (line["task"], line["queue"], line["attempt"], line["user_id"]) == (
            "notifications.send",
            "notifications",
            1,
            ghost,
        )


def test_run_and_api_say_where_they_listen(cli: Cli) -> None:
    for command in ("run", "api", "demo"):
        result = cli(command, "--help")
        assert "--host" in result.stdout
        assert "--port" in result.stdout
        assert "127.0.0.1:8000" in result.stdout


@pytest.mark.timeout(180)
def test_the_demo_shows_closed_days_reminders_and_an_export_within_a_minute(
    cli: Cli, processes: list, tmp_path: Path
) -> None:
    process = cli.start("demo")
    processes.append(process)
    base = f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}"
    wait_for_http(f"{base}/livez", within=60)
    started = time.monotonic()

    def overview() -> dict[str, int]:
        with urllib.request.urlopen(f"{base}/admin", timeout=5) as response:  # noqa: S310
            page = response.read().decode()
        return {
            card: int(m.group(1)) if (m := re.search(rf'id="{card}">(\d+)<', page)) else -1
            for card in ("user-days-closed", "reminders-sent", "exports-complete")
        }

    seen = overview()
    while min(seen.values()) < 1 and time.monotonic() - started < 60:
        time.sleep(2)
        seen = overview()
    (tmp_path / "overview.json").write_text(json.dumps(seen))
    code, _, output = stop(process)

    assert min(seen.values()) >= 1, (seen, output[-3000:])
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
    assert "demo: the dashboard is at http://127.0.0.1:" in output


def test_the_cli_the_dashboard_and_the_metrics_give_the_same_numbers(
    cli: Cli, database_url: str, tmp_path: Path
) -> None:
    """One definition per question: users with rollover work, users backing off, the rollover
    lag, notifications waiting, jobs by queue and status. Before, the dashboard counted users
    "due" its own way and the outbox three ways."""
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families
    from sqlalchemy import text

    from planner_jobs.api.app import create_app
    from planner_jobs.runtime import open_runtime
    from planner_jobs.settings import Settings

    a_failed_job(cli, database_url)  # a failed job in the notifications queue
    assert cli("jobs", "pause", "exports").returncode == 0
    engine = create_engine(database_url)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO users (email, created_at) SELECT 'u' || n || '@example.com',"
                " now() - interval '3 days' FROM generate_series(1, 7) n"
            )
        )  # never planned: work for the sweep
        c.execute(
            text(
                "UPDATE users SET rollover_next_date = current_date - 2,"
                " rollover_due_at = now() - interval '1 hour', rollover_zone = timezone"
                " WHERE email IN ('u1@example.com', 'u2@example.com')"
            )
        )  # due an hour ago
        c.execute(
            text(
                "UPDATE users SET rollover_retry_at = now() + interval '5 minutes',"
                " rollover_error = 'a broken row' WHERE email = 'u3@example.com'"
            )
        )
        c.execute(
            text(
                """SELECT planner_notify(id, '{"title": "waiting"}') FROM users"""
                " WHERE email LIKE 'u%@example.com'"
            )
        )
    engine.dispose()

    shown = json.loads(cli("status", "--json").stdout)
    settings = Settings(_env_file=None, database_url=database_url, data_dir=tmp_path)  # type: ignore[call-arg]
    with (
        open_runtime(settings, periodic=False) as runtime,
        TestClient(create_app(runtime), base_url="http://127.0.0.1") as client,
    ):
        page = client.get("/admin").text
        scraped = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(client.get("/metrics").text)
            for sample in family.samples
        }

    def on_page(element: str) -> str:
        found = re.search(rf'id="{element}">([^<]*)<', page)
        assert found is not None, element
        return found.group(1)

    def metric(name: str, **labels: str) -> float:
        return scraped[(name, tuple(sorted(labels.items())))]

    rollover, deliveries = shown["rollover"], shown["deliveries"]
    # All seven have work (the one backing off too: it has a day to close, later).
    assert (rollover["users_due"], rollover["users_backing_off"], deliveries["outbox"]) == (7, 1, 7)
    assert (
        int(on_page("users-due"))
        == rollover["users_due"]
        == metric("planner_jobs_rollover_users_due")
    )
    assert (
        int(on_page("users-backing-off"))
        == rollover["users_backing_off"]
        == metric("planner_jobs_rollover_users_backing_off")
    )
    assert int(on_page("outbox")) == deliveries["outbox"] == metric("planner_jobs_outbox_waiting")
    assert abs(rollover["lag_seconds"] - metric("planner_jobs_rollover_lag_seconds")) < 30
    assert rollover["lag_seconds"] > 3000  # the hour of the two due users
    for queue in shown["queues"]:
        for status, count in queue["counts"].items():
            assert metric("planner_jobs_queue_jobs", queue=queue["name"], status=status) == count
            cell = re.search(
                rf'data-queue="{queue["name"]}">.*?data-status="{status}">(?:<a[^>]*>)?(\d+)',
                page,
                re.S,
            )
            assert cell is not None
            assert int(cell.group(1)) == count
        paused = queue["name"] == "exports"
        assert queue["paused"] is paused
        assert metric("planner_jobs_queue_paused", queue=queue["name"]) == float(paused)
        row = re.search(rf'data-queue="{queue["name"]}">.*?</tr>', page, re.S)
        assert row is not None
        assert ("data-paused" in row.group(0)) is paused
