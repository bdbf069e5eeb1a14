"""`planner-jobs jobs` acting on many jobs, on one user's, on a paused queue and on a periodic
task, as an operator types them (the contract's Command line)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from tests.acceptance.conftest import Cli, assert_one_line_error, stop, wait_for_http
from tests.acceptance.test_operate import a_failed_job, defer


def test_retry_all_and_cancel_all_act_on_what_the_filters_select(
    cli: Cli, database_url: str
) -> None:
    first, ghost = a_failed_job(cli, database_url)
    second, _ = a_failed_job(cli, database_url)

    mine = cli("jobs", "list", "--user", ghost, "--json")
    retried = cli("jobs", "retry", "--all", "--user", ghost)
    rest = cli("jobs", "retry", "--all", "--queue", "notifications", "--json")
    none_left = cli("jobs", "retry", "--all", "--task", "notifications.send")
    cancelled = cli("jobs", "cancel", "--all", "--queue", "notifications")
    statuses = cli("jobs", "list", "--queue", "notifications", "--json")

    assert [j["id"] for j in json.loads(mine.stdout)] == [first]
    assert retried.stdout.strip() == "1 job is back in its queue", retried.stderr
    assert json.loads(rest.stdout) == {"done": 1, "skipped": 0}
    assert none_left.stdout.strip() == "0 jobs are back in their queues"
    assert cancelled.stdout.strip() == "2 jobs are cancelled"
    assert {(j["id"], j["status"], j["attempts"]) for j in json.loads(statuses.stdout)} == {
        (first, "cancelled", 1),
        (second, "cancelled", 1),
    }


def test_a_paused_queue_shows_everywhere_and_outlives_the_commands(
    cli: Cli, database_url: str
) -> None:
    paused = cli("jobs", "pause", "notifications")
    job = defer(database_url, "notifications.send", userId=str(uuid.uuid4()), payload={"t": 1})
    worked = cli("worker", "--burst", "--queue", "notifications", timeout=60)
    queues = cli("jobs", "queues")
    status = cli("status", "--json")
    listed = cli("jobs", "list", "--json")
    resumed = cli("jobs", "resume", "notifications")
    worked_again = cli("worker", "--burst", "--queue", "notifications", timeout=60)
    after = cli("jobs", "list", "--json")

    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("queue notifications is paused")
    assert worked.returncode == 0, worked.stderr
    assert [(j["id"], j["status"]) for j in json.loads(listed.stdout)] == [(job, "todo")]
    [line] = [line for line in queues.stdout.splitlines() if line.startswith("notifications")]
    assert line.split()[-1] == "paused"
    assert {q["name"]: q["paused"] for q in json.loads(status.stdout)["queues"]} == {
        "exports": False,
        "notifications": True,
        "maintenance": False,
    }
    assert resumed.stdout.startswith("queue notifications is resumed")
    assert worked_again.returncode == 0, worked_again.stderr
    assert [(j["id"], j["status"]) for j in json.loads(after.stdout)] == [(job, "failed")]


def test_jobs_run_queues_a_periodic_task_now_once(cli: Cli) -> None:
    queued = cli("jobs", "run", "tokens.cleanup")
    again = cli("jobs", "run", "tokens.cleanup")
    worked = cli("worker", "--burst", "--queue", "maintenance", timeout=60)
    listed = cli("jobs", "list", "--task", "tokens.cleanup", "--json")

    assert queued.returncode == 0, queued.stderr
    job = int(queued.stdout.split()[-1])
    assert queued.stdout.strip() == f"tokens.cleanup is queued to run now as job {job}"
    assert again.stdout.strip() == f"tokens.cleanup was queued to run already, as job {job}"
    assert worked.returncode == 0, worked.stderr
    assert (job, "succeeded") in [(j["id"], j["status"]) for j in json.loads(listed.stdout)]


def test_an_unknown_queue_or_task_is_a_one_line_error_naming_the_known_ones(cli: Cli) -> None:
    for command in (
        ("jobs", "list", "--queue", "nope"),
        ("jobs", "pause", "nope"),
        ("jobs", "resume", "nope"),
        ("jobs", "retry", "--all", "--queue", "nope"),
    ):
        result = cli(*command)
        assert_one_line_error(result, "there is no queue 'nope'", "exports, notifications")
        assert result.returncode == 1, command
    unknown_task = cli("jobs", "list", "--task", "nope")
    not_periodic = cli("jobs", "run", "notifications.send")
    both = cli("jobs", "retry", "7", "--all")
    neither = cli("jobs", "cancel")
    filters_with_an_id = cli("jobs", "cancel", "7", "--queue", "exports")

    assert_one_line_error(unknown_task, "there is no task 'nope'", "rollover.sweep")
    assert_one_line_error(not_periodic, "there is no periodic task 'notifications.send'")
    assert_one_line_error(both, "give one job ID, or --all")
    assert_one_line_error(neither, "give one job ID, or --all")
    assert_one_line_error(filters_with_an_id, "the filters go with --all")


def test_a_start_logs_why_the_dashboard_is_off_and_no_routine_lines(
    cli: Cli, processes: list
) -> None:
    """On 0.0.0.0 with no password the dashboard answers 404: the log says why; a start logs
    no line per periodic task or per migration plugin."""
    cli.environment.update(PLANNER_HOST="0.0.0.0", PLANNER_ENV="development")  # noqa: S104 (the case tried)
    cli.environment.pop("PLANNER_ADMIN_PASSWORD", None)
    server = cli.start("run")
    processes.append(server)
    wait_for_http(f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}/readyz", within=60)
    closed = urllib.request.Request(f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}/admin")
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(closed, timeout=10)  # noqa: S310 (a URL of this test)
    answered.value.close()  # the answer holds its connection
    code, _, output = stop(server)

    assert answered.value.code == 404
    assert code == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [why] = [line for line in lines if "dashboard" in line["message"]]
    assert why["level"] == "warning"
    assert "listens on 0.0.0.0" in why["message"]
    assert "PLANNER_ADMIN_PASSWORD" in why["message"]
    routine = [
        line["message"]
        for line in lines
        if line["message"].startswith(("Registering task", "setup plugin"))
    ]
    assert routine == []
