"""The main app's way in: `planner_notify()` and `planner_request_export()` called in the caller's
own transaction, and `POST /internal/notifications` for services that do not share the database.
The push receiver is real; a worker runs as the service runs it, woken by NOTIFY."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from planner_jobs.api.app import create_app
from planner_jobs.db.engine import libpq_url
from planner_jobs.domain.notifications import compact_json_text
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.jobs.exports import take_in_requests
from planner_jobs.runtime import Runtime
from tests.integration.conftest import job_statuses, new_user, outbox_size, subscribe, work
from tests.push_receiver import PushReceiver

SERVICE_TOKEN = "a-service-token-of-at-least-32-bytes!"


def connect(runtime: Runtime) -> psycopg.Connection[Any]:
    """A plain libpq connection, as another program (the main app) has."""
    return psycopg.connect(libpq_url(runtime.database_url))


def call(runtime: Runtime, function: str, *arguments: Any) -> Any:
    """Call a SQL function in a transaction of its own and commit."""
    placeholders = ", ".join(["%s"] * len(arguments))
    with connect(runtime) as connection:
        return connection.execute(f"SELECT {function}({placeholders})", arguments).fetchone()[0]  # type: ignore[index]


def refusal(runtime: Runtime, function: str, *arguments: Any) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as raised:
        call(runtime, function, *arguments)
    return raised.value


# --- planner_notify ---------------------------------------------------------------------------


def test_the_functions_keep_their_signatures(runtime: Runtime) -> None:
    """Other programs call these: no later migration may change them (only add optional
    parameters at the end, which this test would then show)."""
    with runtime.engine.connect() as c:
        signatures = dict(
            c.execute(
                sa.text(
                    "SELECT proname, pg_get_function_arguments(oid)"
                    " || ' -> ' || pg_get_function_result(oid) FROM pg_proc"
                    " WHERE proname IN ('planner_notify', 'planner_request_export')"
                )
            ).all()
        )

    assert signatures == {
        "planner_notify": (
            "user_id uuid, payload jsonb, urgency text DEFAULT 'normal'::text,"
            " topic text DEFAULT NULL::text, ttl integer DEFAULT NULL::integer,"
            " dedupe_key text DEFAULT NULL::text -> bigint"
        ),
        "planner_request_export": "user_id uuid, format text -> uuid",
    }


def test_a_rolled_back_notification_leaves_nothing(runtime: Runtime) -> None:
    user = new_user(runtime)
    with connect(runtime) as connection:
        connection.execute("SELECT planner_notify(%s, %s)", (user, Jsonb({"title": "no"})))
        connection.rollback()

    assert outbox_size(runtime) == 0


def test_a_deleted_user_takes_their_notifications_and_deliveries(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    """There is no foreign key (its check would lock the user's row in every caller's
    transaction): triggers on users do what its cascade did, for DELETE and TRUNCATE."""
    gone, kept = new_user(push_runtime), new_user(push_runtime)
    subscribe(push_runtime, gone, receiver, "phone")
    for user in (gone, kept, gone):
        call(push_runtime, "planner_notify", user, Jsonb({"title": "hi"}))
    with push_runtime.engine.begin() as c:  # drained: the deliveries are made
        c.execute(sa.text("UPDATE notifications SET drained_at = now()"))
        c.execute(
            sa.text(
                "INSERT INTO push_deliveries (notification_id, subscription_id)"
                " SELECT n.id, s.id FROM notifications n JOIN push_subscriptions s USING (user_id)"
            )
        )

    with push_runtime.engine.begin() as c:
        c.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": gone})
    with push_runtime.engine.connect() as c:
        left = c.scalars(sa.text("SELECT user_id FROM notifications")).all()
        deliveries = c.scalar(sa.text("SELECT count(*) FROM push_deliveries"))
    assert (left, deliveries) == ([kept], 0)

    with push_runtime.engine.begin() as c:
        c.execute(sa.text("TRUNCATE users CASCADE"))
    assert outbox_size(push_runtime) == 0


def test_a_notification_whose_user_vanished_meanwhile_is_drained_without_deliveries(
    push_runtime: Runtime,
) -> None:
    """What the foreign key's lock prevented: a notification committed just after its user's
    deletion (checked before it) has no subscription to go to, and is drained like any other."""
    with push_runtime.engine.begin() as c:
        c.execute(
            sa.text("INSERT INTO notifications (user_id, body) VALUES (:u, '{}')"),
            {"u": uuid.uuid4()},
        )

    work(push_runtime)

    assert job_statuses(push_runtime) == []
    with push_runtime.engine.connect() as c:
        assert c.scalar(sa.text("SELECT drained_at IS NOT NULL FROM notifications"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"user_id": uuid.UUID(int=1)}, "user_id: there is no user 00000000-"),
        ({"payload": ["not", "an", "object"]}, "payload: must be a JSON object"),
        ({"payload": {"body": "y" * 4000}}, "payload: is 4011 bytes of JSON; at most 3993 fit"),
        ({"urgency": "urgent"}, "urgency: must be one of very-low, low, normal, high"),
        ({"urgency": "normal\r\nX-Injected: 1"}, "urgency: must be one of"),
        ({"topic": ""}, "topic: must be 1 to 32 characters"),
        ({"topic": "x" * 33}, "topic: must be 1 to 32 characters"),
        ({"topic": "a b"}, "topic: must be 1 to 32 characters"),
        ({"topic": "t\r\nX-Injected: 1"}, "topic: must be 1 to 32 characters"),
        ({"topic": "ünï"}, "topic: must be 1 to 32 characters"),
        ({"ttl": -1}, "ttl: must be 0 to 2419200 seconds"),
        ({"ttl": 2_419_201}, "ttl: must be 0 to 2419200 seconds"),
        ({"dedupe_key": ""}, "dedupe_key: must be 1 to 200 characters"),
        ({"dedupe_key": "k" * 201}, "dedupe_key: must be 1 to 200 characters"),
    ],
)
def test_a_bad_argument_is_22023_naming_it_and_writes_nothing(
    runtime: Runtime, arguments: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {"user_id": new_user(runtime), "payload": {"title": "t"}}
    values.update(arguments)
    named = ", ".join(f"{name} => %({name})s" for name in values)
    values["payload"] = Jsonb(values["payload"])

    with pytest.raises(psycopg.Error) as raised, connect(runtime) as connection:
        connection.execute(f"SELECT planner_notify({named})", values)

    assert raised.value.sqlstate == "22023"
    assert (raised.value.diag.message_primary or "").startswith(message)
    assert outbox_size(runtime) == 0


@pytest.mark.parametrize(
    ("urgency", "topic", "ttl"),
    [
        ("very-low", None, 0),
        ("low", "a", None),
        ("normal", "0123456789abcdef" * 2, 2_419_200),
        ("high", "A-b_C", 60),
    ],
)
def test_the_values_of_rfc_8030_are_accepted(
    runtime: Runtime, urgency: str, topic: str | None, ttl: int | None
) -> None:
    user = new_user(runtime)

    assert call(runtime, "planner_notify", user, Jsonb({}), urgency, topic, ttl) > 0


def _deep(levels: int) -> dict[str, Any]:
    """An object holding `levels` objects, each in the one before."""
    payload: dict[str, Any] = {}
    for _ in range(levels):
        payload = {"a": payload}
    return payload


_SPACED = {"b": ["x"] * 900}  # 4,507 bytes as PostgreSQL renders it, 3,607 sent compact
_FITS = {"b": "é" * 1992 + "x"}  # 3,993 bytes either way
_DECLARATIVE = {
    "web_push": 8030,
    "notification": {"title": "t", "navigate": "https://planner.example/today"},
}
_EDGES: list[tuple[Any, ...]] = [
    (Jsonb({}),),
    (Jsonb({"title": "Well done", "body": "3 tasks left"}),),
    (Jsonb(_deep(31)),),  # 32 levels of objects: the deepest allowed
    (Jsonb(_deep(32)),),
    (Jsonb([1, 2]),),
    (Jsonb("text"),),
    (None,),
    (Jsonb(_SPACED),),
    (Jsonb(_FITS),),
    (Jsonb({"b": _FITS["b"] + "x"}),),
    (Jsonb(_DECLARATIVE),),
    (Jsonb({**_DECLARATIVE, "notification": {"title": ""}}),),
    (Jsonb({**_DECLARATIVE, "web_push": 8030.0}),),
    (Jsonb({"web_push": "8030", "title": "t"}),),
    *[(Jsonb({}), urgency) for urgency in ("very-low", "low", "high", None, "urgent", "NORMAL")],
    *[
        (Jsonb({}), "normal", topic)
        for topic in ("", "a" * 32, "a" * 33, "a b", "é", "x\n", "A-b_C9")
    ],
    *[(Jsonb({}), "normal", None, ttl) for ttl in (-1, 0, 2_419_200, 2_419_201)],
    (Jsonb({}), "normal", None, None, "a-key"),
    (Jsonb({}), "normal", None, None, ""),
]


def _raise(runtime: Runtime, call: str, arguments: tuple[Any, ...]) -> Any:
    """What raising a notification leaves: the stored row, or the refusal's code and message
    (rolled back either way)."""
    with connect(runtime) as connection:
        try:
            found = connection.execute(call, arguments).fetchone()
            row = connection.execute(
                "SELECT user_id, body, urgency, topic, ttl, dedupe_key, source, duplicates"
                " FROM notifications WHERE id = %s",
                found,
            ).fetchone()
            return ("stored", row)
        except psycopg.Error as error:
            return ("refused", error.sqlstate, error.diag.message_primary)
        finally:
            connection.rollback()


def test_the_fast_path_stores_what_the_rules_store_and_refuses_nothing_they_accept(
    runtime: Runtime,
) -> None:
    """`planner_notify()` writes an ordinary notification in one statement of its own
    (migration 0023) and hands anything else to `planner_enqueue_notification()`, the one place
    of the rules: over the edge cases of every rule, both give the same answer."""
    user = new_user(runtime)
    stored = 0
    for given in _EDGES:
        for who in (user, uuid.uuid4(), None):
            arguments = (who, *given)
            # planner_notify's defaults, spelled out for the function that has none
            full = (*arguments, *(None, None, "normal", None, None, None)[len(arguments) :])
            fast = _raise(
                runtime, f"SELECT planner_notify({', '.join(['%s'] * len(arguments))})", arguments
            )
            ruled = _raise(
                runtime, "SELECT planner_enqueue_notification(%s, %s, %s, %s, %s, %s, 'sql')", full
            )
            assert fast == ruled, arguments
            stored += fast[0] == "stored"

    assert stored == 17  # the cases above that are within the rules, for the existing user
    assert outbox_size(runtime) == 0


def test_the_largest_payload_that_fits_is_accepted_and_one_byte_more_is_not(
    runtime: Runtime,
) -> None:
    user = new_user(runtime)
    # {"b":"…"}: 8 bytes around the text, counted as the browser receives it (UTF-8).
    fits = {"b": "é" * ((3993 - 8) // 2) + "x" * ((3993 - 8) % 2)}
    too_big = {"b": fits["b"] + "x"}

    assert call(runtime, "planner_notify", user, Jsonb(fits)) > 0
    assert refusal(runtime, "planner_notify", user, Jsonb(too_big)).sqlstate == "22023"
    with runtime.engine.connect() as c:  # stored as PostgreSQL renders it, sent compact
        body = c.scalar(sa.text("SELECT body FROM notifications"))
    assert len(compact_json_text(body).encode()) == 3993


def test_a_repeated_deduplication_key_within_a_day_is_dropped_and_counted(
    runtime: Runtime,
) -> None:
    user, other = new_user(runtime), new_user(runtime)
    first = call(runtime, "planner_notify", user, Jsonb({"n": 1}), "normal", None, None, "daily")
    again = call(runtime, "planner_notify", user, Jsonb({"n": 2}), "normal", None, None, "daily")
    someone_else = call(
        runtime, "planner_notify", other, Jsonb({"n": 3}), "normal", None, None, "daily"
    )
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE notifications SET created_at = now() - interval '25 hours'"))
    a_day_later = call(
        runtime, "planner_notify", user, Jsonb({"n": 4}), "normal", None, None, "daily"
    )

    assert again == first
    assert len({first, someone_else, a_day_later}) == 3
    with runtime.engine.connect() as c:
        rows = c.execute(sa.text("SELECT id, body, duplicates FROM notifications ORDER BY id"))
        assert [tuple(row) for row in rows] == [
            (first, '{"n": 1}', 1),  # as PostgreSQL renders it (sent without the spaces)
            (someone_else, '{"n": 3}', 0),
            (a_day_later, '{"n": 4}', 0),
        ]


def test_one_transaction_raises_more_keyed_notifications_than_the_lock_table_holds(
    runtime: Runtime,
) -> None:
    """A key's repeat is found by its unique index: no lock is kept per key into the commit
    (the server's lock table holds max_locks_per_transaction per server process, with some
    slack; an advisory lock per key ran out of shared memory here at twice that)."""
    user = new_user(runtime)
    with connect(runtime) as connection:
        keys = connection.execute(
            "SELECT 2 * current_setting('max_locks_per_transaction')::int * (1"
            + "".join(
                f" + current_setting('{setting}')::int"
                for setting in (
                    "max_connections",
                    "autovacuum_max_workers",
                    "max_worker_processes",
                    "max_wal_senders",
                    "max_prepared_transactions",
                )
            )
            + ")"
        ).fetchone()[0]  # type: ignore[index]
        raised = connection.execute(
            "SELECT count(DISTINCT planner_notify(%s, '{}', dedupe_key => 'k' || n))"
            "  FROM generate_series(1, %s) AS n",
            (user, keys),
        ).fetchone()[0]  # type: ignore[index]
        repeated = connection.execute(
            "SELECT count(DISTINCT planner_notify(%s, '{}', dedupe_key => 'k' || (n %% 10 + 1)))"
            "  FROM generate_series(1, 100) AS n",
            (user,),
        ).fetchone()[0]  # type: ignore[index]

    assert raised == keys
    assert repeated == 10  # the holders of k1..k10, raised above
    assert outbox_size(runtime) == keys


def test_concurrent_calls_with_one_key_queue_one_notification(runtime: Runtime) -> None:
    user = new_user(runtime)
    ids: list[int] = []
    barrier = threading.Barrier(4)

    def raise_it() -> None:
        with connect(runtime) as connection:
            barrier.wait()
            row = connection.execute(
                "SELECT planner_notify(%s, %s, dedupe_key => 'once'), pg_sleep(0.2)",
                (user, Jsonb({"t": "x"})),
            ).fetchone()
            assert row is not None
            ids.append(row[0])

    threads = [threading.Thread(target=raise_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 1
    assert outbox_size(runtime) == 1


@contextlib.contextmanager
def running_worker(runtime: Runtime) -> Iterator[None]:
    """`planner-jobs worker --queue notifications` in a process of its own, on this runtime's
    settings, until the block ends."""
    settings = runtime.settings
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")},
        "PLANNER_DATABASE_URL": runtime.database_url,
        "PLANNER_DATA_DIR": str(settings.data_dir),  # the same development VAPID key
        "PLANNER_PUSH_ALLOWED_HOSTS": ",".join(settings.push_allowed_hosts),
        "PLANNER_PUSH_TTL": str(settings.push_ttl),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "planner_jobs", "worker", "--queue", "notifications"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not polling(runtime):
            assert worker.poll() is None, "the worker stopped"
            assert time.monotonic() < deadline, "the worker did not start polling"
            time.sleep(0.05)
        time.sleep(0.2)
        yield
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output


def polling(runtime: Runtime) -> bool:
    with runtime.engine.connect() as c:
        return bool(
            c.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'planner-jobs intake'"
                )
            )
        )


def test_a_committed_notification_is_sent_at_once_by_a_running_worker(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    """The worker polls the outbox's index (every 0.1 s) and procrastinate's own wake-up
    brings the delivery job to it at once; the message is received well within 2 s."""
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    with running_worker(push_runtime):
        waits = []
        for n in range(3):
            with connect(push_runtime) as connection:
                connection.execute(
                    "SELECT planner_notify(%s, %s, ttl => 120)", (user, Jsonb({"n": n}))
                )
                connection.commit()
                committed = time.monotonic()
            while len(receiver.payloads("phone")) <= n and time.monotonic() - committed < 10:
                time.sleep(0.005)
            waits.append(time.monotonic() - committed)
            time.sleep(0.3)

    assert receiver.payloads("phone") == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert max(waits) < 2, waits
    assert receiver.received[0].headers["ttl"] == "120"


def test_the_send_job_goes_through_the_outbox_once_with_its_options(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    with push_runtime.engine.begin() as c:
        for arguments in (
            {"payload": {"title": "job"}, "ttl": 30, "topic": "news", "urgency": "high"},
            {"payload": {"title": "plain"}},
        ):
            defer_in_transaction(
                c, push_runtime.job_app, "notifications.send", userId=str(user), **arguments
            )

    work(push_runtime)

    assert sorted(p["title"] for p in receiver.payloads("phone")) == ["job", "plain"]
    headers = next(r.headers for r in receiver.received if r.payload["title"] == "job")
    assert (headers["ttl"], headers["topic"], headers["urgency"]) == ("30", "news", "high")
    assert "succeeded" in job_statuses(push_runtime)
    with push_runtime.engine.connect() as c:
        assert list(c.scalars(sa.text("SELECT DISTINCT source FROM notifications"))) == ["job"]


def test_waiting_send_jobs_are_taken_in_one_go_and_each_message_sent_once(
    push_runtime: Runtime, receiver: PushReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A running `notifications.send` job takes the others waiting with it; a job whose
    arguments break a rule, or have another shape, is left to run alone and fail with why."""
    users = [new_user(push_runtime) for _ in range(30)]
    for n, user in enumerate(users):
        subscribe(push_runtime, user, receiver, f"b{n}")
    with push_runtime.engine.begin() as c:
        for n, user in enumerate(users):
            defer_in_transaction(
                c, push_runtime.job_app, "notifications.send", userId=str(user), payload={"n": n}
            )
        bad_topic = defer_in_transaction(
            c, push_runtime.job_app, "notifications.send",
            userId=str(users[0]), payload={"n": "bad"}, topic="a b",
        )  # fmt: skip
        odd_shape = defer_in_transaction(
            c, push_runtime.job_app, "notifications.send",
            userId=str(users[0]), payload={"n": "odd"}, colour="red",
        )  # fmt: skip

    work(push_runtime)

    assert receiver.errors == []
    for n in range(30):
        assert receiver.payloads(f"b{n}") == [{"n": n}]
    with push_runtime.engine.connect() as c:
        jobs = dict(
            c.execute(
                sa.text(
                    "SELECT id, status FROM procrastinate_jobs"
                    " WHERE task_name = 'notifications.send'"
                )
            ).all()
        )
        run_alone = c.scalar(
            sa.text(
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE task_name = 'notifications.send' AND worker_id IS NOT NULL"
            )
        )
        timelines = {
            tuple(events)
            for (events,) in c.execute(
                sa.text(
                    "SELECT array_agg(e.type::text ORDER BY e.id) FROM procrastinate_events e"
                    " JOIN procrastinate_jobs j ON j.id = e.job_id"
                    " WHERE j.task_name = 'notifications.send' AND j.status = 'succeeded'"
                    " GROUP BY j.id"
                )
            )
        }
        keys = set(c.scalars(sa.text("SELECT dedupe_key FROM notifications")))
    assert (jobs.pop(bad_topic), jobs.pop(odd_shape)) == ("failed", "failed")
    assert set(jobs.values()) == {"succeeded"}
    assert run_alone is not None
    assert run_alone < 10  # most were taken along by a running one, not run each
    assert timelines == {("deferred", "started", "succeeded")}
    assert keys == {f"planner-job:{job}" for job in jobs}
    assert "topic: must be 1 to 32 characters" in caplog.text


# --- planner_request_export -------------------------------------------------------------------


def export_jobs(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text("SELECT format, status FROM export_jobs"))]  # type: ignore[misc]


def test_an_export_requested_in_sql_follows_the_api_rules(runtime: Runtime) -> None:
    user = new_user(runtime)

    first = call(runtime, "planner_request_export", user, "csv")
    same = call(runtime, "planner_request_export", user, "csv")
    other = refusal(runtime, "planner_request_export", user, "json")

    assert same == first
    assert other.sqlstate == "PJ409"
    assert other.diag.message_primary == (
        "an export in csv is already pending; one export runs at a time"
    )
    assert export_jobs(runtime) == [("csv", "pending")]
    with runtime.engine.connect() as c:  # the request alone: no job, no NOTIFY, in its commit
        assert c.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs")) == 0
    assert take_in_requests(runtime.engine, runtime.job_app) == 1  # a worker's intake
    assert take_in_requests(runtime.engine, runtime.job_app) == 0
    with runtime.engine.connect() as c:
        build = c.execute(
            sa.text("SELECT args, queueing_lock FROM procrastinate_jobs WHERE status = 'todo'")
        ).one()
    assert build.args == {"export_id": str(first)}
    assert build.queueing_lock == f"export:{first}"


def test_an_open_export_request_holds_up_no_insert_about_its_user(runtime: Runtime) -> None:
    """The request decides a user's requests one at a time (a second one waits), but the main
    app's inserts that name the user (a foreign-key check) go on meanwhile: before, the
    request's `FOR UPDATE` on the user's row held them until its commit."""
    user = new_user(runtime)
    with connect(runtime) as requesting, connect(runtime) as other:
        requesting.execute("SELECT planner_request_export(%s, 'csv')", (user,))
        other.execute("SET lock_timeout = '1s'")
        other.execute(
            "INSERT INTO tasks (user_id, title) VALUES (%s, 'written meanwhile')", (user,)
        )
        other.commit()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("SELECT planner_request_export(%s, 'csv')", (user,))
        other.rollback()
        requesting.commit()
        assert other.execute("SELECT planner_request_export(%s, 'csv')", (user,)).fetchone()
    assert export_jobs(runtime) == [("csv", "pending")]


def test_an_export_row_the_main_app_inserts_itself_is_built_too(runtime: Runtime) -> None:
    user = new_user(runtime)
    with runtime.engine.begin() as c:
        c.execute(
            sa.text("INSERT INTO export_jobs (user_id, format) VALUES (:u, 'json')"), {"u": user}
        )

    work(runtime, "exports")

    assert export_jobs(runtime) == [("json", "complete")]


def test_the_sixth_export_of_a_day_is_pj429_with_the_seconds_to_wait(runtime: Runtime) -> None:
    user = new_user(runtime)
    with runtime.engine.begin() as c:
        for hours in (23, 20, 10, 5, 1):
            c.execute(
                sa.text(
                    "INSERT INTO export_jobs (user_id, format, status, created_at)"
                    " VALUES (:u, 'json', 'complete', now() - make_interval(hours => :h))"
                ),
                {"u": user, "h": hours},
            )

    refused = refusal(runtime, "planner_request_export", user, "json")

    assert refused.sqlstate == "PJ429"
    assert refused.diag.message_primary == "at most 5 exports in 24 hours"
    assert 3590 <= int(refused.diag.message_detail or 0) <= 3600  # the 23-hour-old one ages out


@pytest.mark.parametrize(
    ("user", "export_format", "message"),
    [
        (uuid.UUID(int=1), "json", "user_id: there is no user"),
        (None, "json", "user_id: is required"),
        ("known", "pdf", "format: must be json, csv or markdown, not 'pdf'"),
        ("known", None, "format: must be json, csv or markdown, not NULL"),
    ],
)
def test_a_bad_export_argument_is_22023(
    runtime: Runtime, user: Any, export_format: str | None, message: str
) -> None:
    if user == "known":
        user = new_user(runtime)

    refused = refusal(runtime, "planner_request_export", user, export_format)

    assert refused.sqlstate == "22023"
    assert (refused.diag.message_primary or "").startswith(message)
    assert export_jobs(runtime) == []


def test_the_sql_function_knows_the_formats_of_the_registry(runtime: Runtime) -> None:
    from planner_jobs.domain.exports.formats import FORMAT_NAMES

    for export_format in FORMAT_NAMES:
        user = new_user(runtime)
        assert call(runtime, "planner_request_export", user, export_format)


# --- POST /internal/notifications -------------------------------------------------------------


@pytest.fixture
def service_client(push_runtime: Runtime) -> Iterator[TestClient]:
    settings = push_runtime.settings.model_copy(update={"service_token": SecretStr(SERVICE_TOKEN)})
    runtime = dataclasses.replace(push_runtime, settings=settings)
    with TestClient(create_app(runtime)) as client:
        yield client


AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


def test_internal_notifications_are_queued_all_together_and_sent(
    service_client: TestClient, push_runtime: Runtime, receiver: PushReceiver
) -> None:
    ada, bob = new_user(push_runtime), new_user(push_runtime)
    subscribe(push_runtime, ada, receiver, "ada")
    subscribe(push_runtime, bob, receiver, "bob")
    items = [
        {"userId": str(ada), "payload": {"title": "one"}, "ttl": 60, "dedupeKey": "k"},
        {"userId": str(bob), "payload": {"title": "two"}, "urgency": "high", "topic": "t"},
        {"userId": str(ada), "payload": {"title": "one again"}, "dedupeKey": "k"},
    ]

    response = service_client.post(
        "/internal/notifications", json={"notifications": items}, headers=AUTH
    )
    work(push_runtime)

    assert response.status_code == 202, response.text
    ids = response.json()["ids"]
    assert len(ids) == 3
    assert ids[0] == ids[2] != ids[1]
    assert receiver.payloads("ada") == [{"title": "one"}]
    assert receiver.payloads("bob") == [{"title": "two"}]


def test_a_bad_item_is_422_naming_its_index_and_field_and_nothing_is_queued(
    service_client: TestClient, push_runtime: Runtime
) -> None:
    user = str(new_user(push_runtime))
    good = {"userId": user, "payload": {"title": "fine"}}
    cases = [
        ([good, {"userId": user, "payload": {"t": "x" * 4000}}], "notifications.1.payload"),
        ([good, good, {"userId": user, "payload": {}, "topic": "a b"}], "notifications.2.topic"),
        ([{"userId": str(uuid.UUID(int=3)), "payload": {}}], "notifications.0.userId"),
        ([good, {"userId": user, "payload": {}, "dedupeKey": ""}], "notifications.1.dedupeKey"),
        ([good, {"userId": user, "payload": "text"}], "notifications.1.payload"),
        ([good, {"userId": "nobody", "payload": {}}], "notifications.1.userId"),
        ([good, {"userId": user, "payload": {"a\x00": "b"}}], "notifications.1.payload"),
        ([good, {"userId": user, "payload": {"n": float("nan")}}], "notifications.1.payload"),
        ([{"userId": user, "payload": {}, "ttl": 2**40}], "notifications.0.ttl"),
        ([{"userId": user, "payload": {}, "ttl": -1}], "notifications.0.ttl"),
        ([], "notifications"),
        ([good] * 1001, "notifications"),
    ]
    for items, field in cases:
        response = service_client.post(  # Python's json, as a client's: NaN as it writes it
            "/internal/notifications",
            content=json.dumps({"notifications": items}),
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (field, response.text)
        assert response.json()["message"].startswith(field), response.json()["message"]
    assert outbox_size(push_runtime) == 0


def test_the_service_token_is_required_and_without_one_the_route_does_not_exist(
    service_client: TestClient, push_runtime: Runtime
) -> None:
    body = {"notifications": [{"userId": str(new_user(push_runtime)), "payload": {}}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": SERVICE_TOKEN}):
        response = service_client.post("/internal/notifications", json=body, headers=headers)
        assert response.status_code == 401
    with TestClient(create_app(push_runtime)) as unconfigured:
        assert (
            unconfigured.post("/internal/notifications", json=body, headers=AUTH).status_code == 404
        )
    assert outbox_size(push_runtime) == 0


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("{not json", "application/json"),
        ('{"notifications": "nope"}', "application/json"),
        ("\xff\xfe", "application/octet-stream"),
        ("[" * 5000 + "]" * 5000, "application/json"),
    ],
)
def test_without_the_token_the_answer_is_401_whatever_the_body(
    service_client: TestClient, content: str, content_type: str
) -> None:
    """The token is checked before the body is read (before: a malformed body got 422)."""
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = service_client.post(
            "/internal/notifications",
            content=content.encode("latin-1"),
            headers={**headers, "Content-Type": content_type},
        )
        assert response.status_code == 401, response.text


@pytest.mark.parametrize("levels", [33, 600, 5000])
def test_a_payload_nested_too_deep_is_422_naming_it_never_500(
    service_client: TestClient, push_runtime: Runtime, levels: int
) -> None:
    user = str(new_user(push_runtime))
    payload = '{"a":' * (levels - 1) + '{"title":"deep"' + "}" * levels
    body = f'{{"notifications": [{{"userId": "{user}", "payload": {{"t": 1}}}},'
    body += f' {{"userId": "{user}", "payload": {payload}}}]}}'

    response = service_client.post(
        "/internal/notifications",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    message = response.json()["message"]
    if levels <= 40:  # parsed: the item and its field are named
        assert message.startswith("notifications.1.payload: must not be nested deeper than 32")
    else:  # refused unread, before Python's parser could run out of stack
        assert message.startswith("body: is nested deeper than 40 levels")
    assert outbox_size(push_runtime) == 0


def test_a_body_over_8_mib_is_413(service_client: TestClient) -> None:
    response = service_client.post(
        "/internal/notifications",
        content=b'{"notifications": ["' + b"x" * (8 * 1024 * 1024) + b'"]}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_a_notification_to_a_user_without_subscriptions_makes_no_job(
    push_runtime: Runtime,
) -> None:
    user = new_user(push_runtime)
    call(push_runtime, "planner_notify", user, Jsonb({"t": 1}))

    work(push_runtime)

    assert job_statuses(push_runtime) == []
    with push_runtime.engine.connect() as c:
        assert c.scalar(sa.text("SELECT drained_at IS NOT NULL FROM notifications"))
