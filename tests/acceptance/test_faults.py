"""Faults, as a crash or an operator would cause them, on real processes and a real PostgreSQL:
SIGKILL in the middle of the work, connections terminated by the server, a push service that
goes away. Each test asserts the exact outcome once the system has recovered: one history row
per user-day, streaks counted once, each message received once per subscription, one stored
file per export, an empty staging folder."""

from __future__ import annotations

import datetime as dt
import signal
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from planner_jobs.catalogue import build_job_app
from planner_jobs.db.engine import libpq_url
from planner_jobs.domain.notifications import NewNotification
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.jobs.exports import request_export
from planner_jobs.jobs.notifications import notify
from planner_jobs.push.keys import VapidKeys
from tests.acceptance.conftest import Cli, base_environment, stop
from tests.data import add_user, utc
from tests.push_receiver import HangingService, PushReceiver

DAYS = 3  # days each user has to close
NOW = "2026-03-08T06:00:00Z"  # users created on 2026-03-05 in UTC: 5, 6 and 7 March are due
FIRST_DAY = dt.date(2026, 3, 5)


def run_sql(engine: sa.Engine, statement: str, **parameters: object) -> object:
    with engine.begin() as c:
        result = c.execute(sa.text(statement), parameters)
        return result.scalar() if result.returns_rows else None


def users_with_good_days(engine: sa.Engine, users: int, first_day: dt.date = FIRST_DAY) -> None:
    """`users` users in UTC created on `first_day`, each with a plan of one completed task on
    each of the `DAYS` days from then."""
    run_sql(
        engine,
        """
        WITH new_users AS (
            INSERT INTO users (email, timezone, created_at)
            SELECT 'u' || n || '@example.com', 'UTC', :first + time '08:00'
              FROM generate_series(1, :users) AS n
            RETURNING id
        ), plans AS (
            INSERT INTO todays_plans (user_id, plan_date)
            SELECT id, :first + d FROM new_users, generate_series(0, :days - 1) AS d
            RETURNING id, user_id, plan_date
        )
        INSERT INTO tasks (user_id, plan_id, title, completed, completed_at)
        SELECT user_id, id, 'done', true, plan_date + time '12:00' FROM plans
        """,
        users=users,
        days=DAYS,
        first=first_day,
    )


def assert_every_user_day_closed_once(
    engine: sa.Engine, users: int, first_day: dt.date = FIRST_DAY
) -> None:
    with engine.connect() as c:
        per_user = c.execute(
            sa.text(
                "SELECT count(*) AS days, min(day) AS first, max(day) AS last"
                " FROM performance_history GROUP BY user_id"
            )
        ).all()
        streaks = c.execute(
            sa.text("SELECT current, longest, count(*) FROM streaks GROUP BY current, longest")
        ).all()
    assert len(per_user) == users
    last_day = first_day + dt.timedelta(days=DAYS - 1)
    assert {(row.days, row.first, row.last) for row in per_user} == {(DAYS, first_day, last_day)}
    assert [tuple(row) for row in streaks] == [(DAYS, DAYS, users)]  # each day counted once


def kill_the_backend(
    engine: sa.Engine, *, table: str, event: str, when: str = "true", times: int = 1
) -> None:
    """The server terminates the connection that next writes `table` (`event`: INSERT or
    UPDATE) a row for which `when` holds, the first `times` times: what an operator's
    pg_terminate_backend, or a server failover, does to a connection in the middle of the work.
    (A sequence counts the faults: it is not rolled back with the killed transaction.)"""
    run_sql(engine, "CREATE SEQUENCE IF NOT EXISTS faults_seen")
    run_sql(
        engine,
        f"""
        CREATE FUNCTION cut_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF ({when}) AND nextval('faults_seen') <= {times} THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NEW;
        END $$
        """,
    )
    run_sql(
        engine,
        f"CREATE TRIGGER cut_{table} BEFORE {event} ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION cut_{table}()",
    )


def everything_due_now(engine: sa.Engine) -> None:
    """Make every scheduled retry due now, instead of waiting for it."""
    run_sql(engine, "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
    run_sql(engine, "UPDATE push_deliveries SET next_attempt_at = now() WHERE status = 'pending'")


# --- the rollover ---------------------------------------------------------------------------


def test_a_rollover_killed_mid_sweep_finishes_exactly_once_when_run_again(
    cli: Cli, database_url: str, engine: sa.Engine, processes: list
) -> None:
    users = 20_000
    users_with_good_days(engine, users)
    sweep = cli.start("cron", "rollover", "--now", NOW)
    processes.append(sweep)
    deadline = time.monotonic() + 120
    closed = 0
    while closed == 0 and time.monotonic() < deadline and sweep.poll() is None:
        closed = int(run_sql(engine, "SELECT count(*) FROM performance_history") or 0)
        time.sleep(0.05)

    sweep.send_signal(signal.SIGKILL)
    sweep.communicate()

    assert 0 < closed < users * DAYS, "the kill must land in the middle of the sweep"
    half_done = int(run_sql(engine, "SELECT count(*) FROM performance_history") or 0)
    assert half_done < users * DAYS
    again = cli("cron", "rollover", "--now", NOW, timeout=300)
    assert again.returncode == 0, again.stderr
    assert_every_user_day_closed_once(engine, users)


def test_a_worker_whose_connection_is_cut_mid_rollover_closes_every_day_once_later(
    cli: Cli, database_url: str, engine: sa.Engine
) -> None:
    job_app = build_job_app(libpq_url(database_url), periodic=False)
    users = 300
    # The worker's tick acts on the clock: users whose last DAYS days are due now.
    first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS)
    users_with_good_days(engine, users, first_day)
    kill_the_backend(engine, table="performance_history", event="INSERT")

    for _ in range(2):  # the first tick loses its connection, the next one finishes
        with engine.begin() as c:
            defer_in_transaction(c, job_app, "rollover.sweep", timestamp=0)
        result = cli("worker", "--burst", "--queue", "maintenance", timeout=120)
        assert result.returncode == 0, result.stderr

    with engine.connect() as c:
        runs = c.execute(
            sa.text(
                "SELECT status FROM procrastinate_jobs WHERE task_name = 'rollover.sweep'"
                " ORDER BY id"
            )
        ).scalars()
        assert list(runs) == ["failed", "succeeded"]
    assert_every_user_day_closed_once(engine, users, first_day)


def test_sigterm_during_a_long_rollover_commits_what_it_closed_and_exits_0(
    cli: Cli, database_url: str, engine: sa.Engine, processes: list
) -> None:
    """Before: the worker waited for the whole sweep (forced out after 14 s with status 1,
    the sweep left `doing`, when it took longer than that)."""
    job_app = build_job_app(libpq_url(database_url), periodic=False)
    users = 50_000
    first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS)
    users_with_good_days(engine, users, first_day)
    with engine.begin() as c:
        job = defer_in_transaction(c, job_app, "rollover.sweep", timestamp=0)
    worker = cli.start("worker", "--queue", "maintenance")
    processes.append(worker)
    deadline = time.monotonic() + 120
    while not run_sql(engine, "SELECT count(*) FROM performance_history"):
        assert time.monotonic() < deadline, "the sweep never started"
        assert worker.poll() is None, worker.communicate()[0]
        time.sleep(0.05)

    code, took, output = stop(worker)

    closed = int(run_sql(engine, "SELECT count(*) FROM performance_history") or 0)
    assert code == 0, output
    assert took < 5, output  # a batch or two, not the rest of the sweep (nor the grace)
    assert 0 < closed < users * DAYS, "the stop must land in the middle of the sweep"
    assert run_sql(engine, "SELECT status FROM procrastinate_jobs WHERE id = :j", j=job) == (
        "succeeded"
    )
    assert "stopped when asked" in output
    again = cli("cron", "rollover", timeout=300)
    assert again.returncode == 0, again.stderr
    assert_every_user_day_closed_once(engine, users, first_day)


# --- exports ----------------------------------------------------------------------------------


def big_user(engine: sa.Engine, tasks: int) -> uuid.UUID:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
        c.execute(
            sa.text(
                "INSERT INTO tasks (user_id, title, notes) SELECT :u, 'task ' || n,"
                " repeat(md5(n::text), 4) FROM generate_series(1, :n) AS n"
            ),
            {"u": user, "n": tasks},
        )
    return user


def stored_files(data_dir: Path) -> list[str]:
    root = data_dir / "exports"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def staged_files(data_dir: Path) -> list[str]:
    staging = data_dir / "staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def test_an_export_whose_connection_is_cut_as_it_completes_stores_one_file(
    cli: Cli, database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    user = big_user(engine, 20_000)
    export = request_export(engine, user, "csv").job
    kill_the_backend(engine, table="export_jobs", event="UPDATE", when="NEW.status = 'complete'")

    first = cli("worker", "--burst", "--queue", "exports", timeout=120)
    assert first.returncode == 0, first.stderr
    assert run_sql(engine, "SELECT status FROM export_jobs") == "processing"
    everything_due_now(engine)
    second = cli("worker", "--burst", "--queue", "exports", "--queue", "notifications", timeout=120)

    assert second.returncode == 0, second.stderr
    data_dir = tmp_path / "var"
    assert run_sql(engine, "SELECT status FROM export_jobs") == "complete"
    assert stored_files(data_dir) == [f"{user}/{export.id}.zip"]
    assert staged_files(data_dir) == []


# --- notifications ----------------------------------------------------------------------------


def push_cli(receiver: PushReceiver, database_url: str, tmp_path: Path) -> Cli:
    keys = VapidKeys.generate()
    receiver.vapid_public_key = keys.application_server_key
    return Cli(
        base_environment(
            tmp_path,
            PLANNER_DATABASE_URL=database_url,
            PLANNER_PUSH_ALLOWED_HOSTS=receiver.host,
            PLANNER_VAPID_PRIVATE_KEY=keys.private_raw,
        )
    )


def subscribed_user(engine: sa.Engine, receiver: PushReceiver, browsers: int) -> uuid.UUID:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
        for n in range(browsers):
            receiver.subscribe(c, user, f"browser-{n}")
    return user


def test_a_push_whose_connection_is_cut_mid_send_reaches_each_browser_once(
    database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    browsers = 30
    with PushReceiver() as receiver:
        cli = push_cli(receiver, database_url, tmp_path)
        user = subscribed_user(engine, receiver, browsers)
        kill_the_backend(engine, table="push_deliveries", event="UPDATE")  # recording answers
        payload = {"title": "once", "body": "only once"}
        notify(engine, NewNotification(user, payload), source="test")

        for _ in range(2):  # whatever was left waiting goes out on the second run
            result = cli("worker", "--burst", "--queue", "notifications", timeout=120)
            assert result.returncode == 0, result.stderr
            everything_due_now(engine)

        assert receiver.errors == []
        for n in range(browsers):
            assert receiver.payloads(f"browser-{n}") == [payload], f"browser-{n}"
    with engine.connect() as c:
        statuses = c.execute(sa.text("SELECT status, count(*) FROM push_deliveries GROUP BY 1"))
        assert [tuple(row) for row in statuses] == [("delivered", browsers)]


def test_a_push_service_down_then_back_gets_each_message_once(
    database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    with PushReceiver() as receiver:
        cli = push_cli(receiver, database_url, tmp_path)
        user = subscribed_user(engine, receiver, 3)
        payload = {"title": "patience", "body": "sent when the service is back"}
        receiver.down()
        notify(engine, NewNotification(user, payload), source="test")

        during = cli("worker", "--burst", "--queue", "notifications", timeout=120)
        with engine.connect() as c:
            waiting = c.execute(
                sa.text("SELECT status, attempts, last_status FROM push_deliveries")
            ).all()
        receiver.up()
        everything_due_now(engine)
        after = cli("worker", "--burst", "--queue", "notifications", timeout=120)

        assert during.returncode == 0, during.stderr
        assert after.returncode == 0, after.stderr
        assert [tuple(row) for row in waiting] == [("pending", 1, None)] * 3
        assert receiver.errors == []
        for n in range(3):
            assert receiver.payloads(f"browser-{n}") == [payload]
    with engine.connect() as c:
        assert list(c.scalars(sa.text("SELECT DISTINCT status FROM push_deliveries"))) == [
            "delivered"
        ]


def test_a_push_service_that_hangs_holds_up_no_other_services_users(
    database_url: str, engine: sa.Engine, tmp_path: Path, processes: list
) -> None:
    """Before: with --concurrency 8, deliveries to a push service that accepts and never
    answers held every job slot for their whole timeout (their retries fetched first), and the
    users of a healthy service got nothing for over 30 s (the contract: 2 s)."""
    keys = VapidKeys.generate()
    with PushReceiver() as receiver, HangingService() as hanging:
        receiver.vapid_public_key = keys.application_server_key
        cli = Cli(
            base_environment(
                tmp_path,
                PLANNER_DATABASE_URL=database_url,
                PLANNER_PUSH_ALLOWED_HOSTS=f"{receiver.host},{hanging.host}",
                PLANNER_VAPID_PRIVATE_KEY=keys.private_raw,
            )
        )
        with engine.begin() as c:
            stuck = [add_user(c, created_at=utc("2026-03-01T00:00")) for _ in range(80)]
            for n, user in enumerate(stuck):
                receiver.subscribe(c, user, f"stuck-{n}", endpoint=hanging.endpoint(f"s{n}"))
            fine = [add_user(c, created_at=utc("2026-03-01T00:00")) for _ in range(4)]
            for n, user in enumerate(fine):
                receiver.subscribe(c, user, f"fine-{n}")
        log = tmp_path / "worker.log"
        worker = cli.start("worker", "--queue", "notifications", "--concurrency", "8", log=log)
        processes.append(worker)
        deadline = time.monotonic() + 60
        while not run_sql(engine, "SELECT count(*) FROM procrastinate_workers"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        waited = []
        for round_, user in enumerate(fine):
            for group in range(10):  # ten drains' worth of pushes to the hanging service
                run_sql(
                    engine,
                    """SELECT count(planner_notify(u, '{"title": "stuck"}')) FROM unnest(:u) u""",
                    u=stuck[group * 8 : (group + 1) * 8],
                )
                time.sleep(0.15)
            committed = time.time()
            run_sql(engine, """SELECT planner_notify(:u, '{"title": "fine"}')""", u=user)
            deadline = time.monotonic() + 40
            while not receiver.payloads(f"fine-{round_}"):
                assert time.monotonic() < deadline, log.read_text()[-5000:]
                time.sleep(0.02)
            [received] = [r for r in receiver.received if r.name == f"fine-{round_}"]
            waited.append(received.at - committed)
        code, _, _ = stop(worker)

    assert hanging.connections > 0  # it was asked, and never answered
    assert max(waited) <= 2.0, (waited, log.read_text()[-5000:])
    assert code == 0, log.read_text()[-5000:]
