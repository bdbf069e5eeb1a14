"""The way in tried as an attacker would: a role of its own, granted nothing or only EXECUTE,
connecting to the real PostgreSQL as another program does.

The functions run as their owner (SECURITY DEFINER); nothing a caller creates may run with the
owner's rights, and no role but the granted ones may call them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from planner_jobs.db.engine import libpq_url
from planner_jobs.db.migrate import WAY_IN, grant_way_in
from planner_jobs.domain.notifications import compact_json_text
from planner_jobs.errors import UsageError
from planner_jobs.runtime import Runtime
from tests.integration.conftest import new_user, outbox_size

INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
def role(runtime: Runtime) -> Iterator[str]:
    """A login role of this test's own, with no right granted (roles belong to the server:
    it is dropped afterwards, with what it was granted in this test's database)."""
    name = f"pj_caller_{uuid.uuid4().hex[:8]}"
    with runtime.engine.begin() as c:
        c.execute(sa.text(f'CREATE ROLE "{name}" LOGIN'))
    yield name
    with runtime.engine.begin() as c:
        c.execute(sa.text(f'DROP OWNED BY "{name}"'))
        c.execute(sa.text(f'DROP ROLE "{name}"'))


def connect_as(runtime: Runtime, role: str) -> psycopg.Connection[Any]:
    url = make_url(libpq_url(runtime.database_url)).set(username=role, password=None)
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def test_a_role_granted_nothing_cannot_call_the_way_in(runtime: Runtime, role: str) -> None:
    user = new_user(runtime)

    with connect_as(runtime, role) as caller:
        for statement, arguments in (
            ("SELECT planner_notify(%s, %s)", (user, Jsonb({"title": "spam"}))),
            ("SELECT planner_request_export(%s, 'json')", (user,)),
            ("SELECT planner_notification_problem(%s, '{}', null, null, null, null)", (user,)),
        ):
            with pytest.raises(psycopg.Error) as refused:
                caller.execute(statement, arguments)
            assert refused.value.sqlstate == INSUFFICIENT_PRIVILEGE, statement

    assert outbox_size(runtime) == 0


def test_execute_is_revoked_from_public_on_every_function_of_ours(runtime: Runtime) -> None:
    with runtime.engine.connect() as c:
        public = c.execute(
            sa.text(
                "SELECT p.oid::regprocedure::text FROM pg_proc p"
                " WHERE p.proname LIKE 'planner\\_%'"
                " AND has_function_privilege('public', p.oid, 'EXECUTE')"
            )
        ).scalars()
        assert list(public) == []


def test_a_granted_role_calls_the_way_in_and_reads_nothing_else(
    runtime: Runtime, role: str
) -> None:
    user = new_user(runtime)

    granted = grant_way_in(runtime.engine, role)
    again = grant_way_in(runtime.engine, role)  # idempotent

    assert granted.role == again.role == role
    with connect_as(runtime, role) as caller:
        notification = caller.execute(
            "SELECT planner_notify(%s, %s)", (user, Jsonb({"title": "hi"}))
        ).fetchone()
        export = caller.execute("SELECT planner_request_export(%s, 'csv')", (user,)).fetchone()
        for table in ("users", "notifications", "export_jobs", "procrastinate_jobs"):
            with pytest.raises(psycopg.Error) as refused:
                caller.execute(f"SELECT * FROM {table}")
            assert refused.value.sqlstate == INSUFFICIENT_PRIVILEGE, table
    assert notification is not None
    assert export is not None
    assert outbox_size(runtime) == 1
    with runtime.engine.connect() as c:
        granted_functions = c.execute(
            sa.text(
                "SELECT p.oid::regprocedure::text FROM pg_proc p"
                " WHERE p.proname LIKE 'planner\\_%'"
                " AND has_function_privilege(:role, p.oid, 'EXECUTE') ORDER BY 1"
            ),
            {"role": role},
        ).scalars()
        assert list(granted_functions) == sorted(f.replace(", ", ",") for f in WAY_IN)


def test_granting_an_unknown_role_is_a_clear_error(runtime: Runtime) -> None:
    with pytest.raises(UsageError, match="there is no role 'nobody_here'"):
        grant_way_in(runtime.engine, "nobody_here")


LOOT = """
    CREATE TEMPORARY TABLE loot (who text, what text);
    CREATE FUNCTION pg_temp.steal() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO pg_temp.loot SELECT current_user, string_agg(email, ',') FROM public.users;
        RETURN NEW;
    END $$;
"""


def test_a_temporary_table_of_the_caller_never_stands_in_for_ours(
    runtime: Runtime, role: str
) -> None:
    """The attack of issue 18: a temporary `notifications` (and `export_jobs`) with a trigger,
    which the functions would have written into, running the trigger as their owner."""
    user = new_user(runtime)
    grant_way_in(runtime.engine, role)

    with connect_as(runtime, role) as caller:
        caller.execute(LOOT)
        caller.execute(
            """
            CREATE TEMPORARY TABLE notifications (
                id bigint GENERATED BY DEFAULT AS IDENTITY, user_id uuid, body text,
                urgency text, topic text, ttl integer, dedupe_key text, source text,
                duplicates integer DEFAULT 0, created_at timestamptz DEFAULT now(),
                drained_at timestamptz);
            CREATE TEMPORARY TABLE export_jobs (
                id uuid DEFAULT gen_random_uuid(), user_id uuid, format text, status text,
                download_url text, error text, created_at timestamptz, completed_at timestamptz,
                expires_at timestamptz, storage_key text);
            CREATE TRIGGER steal BEFORE INSERT ON pg_temp.notifications
                FOR EACH ROW EXECUTE FUNCTION pg_temp.steal();
            CREATE TRIGGER steal BEFORE INSERT ON pg_temp.export_jobs
                FOR EACH ROW EXECUTE FUNCTION pg_temp.steal();
            """
        )
        caller.execute("SELECT planner_notify(%s, %s)", (user, Jsonb({"title": "t"})))
        caller.execute("SELECT planner_request_export(%s, 'json')", (user,))
        stolen = caller.execute("SELECT * FROM pg_temp.loot").fetchall()
        own = caller.execute("SELECT count(*) FROM pg_temp.notifications").fetchone()

    assert stolen == []
    assert own == (0,)
    assert outbox_size(runtime) == 1
    with runtime.engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM export_jobs")) == 1


def test_the_functions_of_the_way_in_search_only_our_schema_then_pg_temp(
    runtime: Runtime,
) -> None:
    with runtime.engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT proname, prosecdef, proconfig FROM pg_proc"
                " WHERE proname IN ('planner_notify', 'planner_request_export') ORDER BY 1"
            )
        ).all()
        schema = c.scalar(sa.text("SELECT current_schema()"))

    assert [tuple(row) for row in rows] == [
        ("planner_notify", True, [f"search_path={schema}, pg_temp"]),
        ("planner_request_export", True, [f"search_path={schema}, pg_temp"]),
    ]


def test_a_role_that_may_delete_users_takes_their_notifications_with_them(
    runtime: Runtime, role: str
) -> None:
    """As the foreign key's cascade did (migration 0019 replaced it by a trigger): the role
    needs no right on the notifications."""
    user = new_user(runtime)
    with runtime.engine.begin() as c:
        c.execute(
            sa.text("SELECT planner_notify(:u, CAST(:p AS jsonb))"),
            {"u": user, "p": json.dumps({"title": "hi"})},
        )
        c.execute(sa.text(f'GRANT SELECT, DELETE ON users TO "{role}"'))

    with connect_as(runtime, role) as caller:
        caller.execute("DELETE FROM users WHERE id = %s", (user,))

    assert outbox_size(runtime) == 0


# --- nested payloads ------------------------------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    """A payload of `levels` objects, one inside the other (the payload itself the first)."""
    value: dict[str, Any] = {"title": "deep"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("levels", [33, 600, 5000])
def test_a_payload_nested_too_deep_is_a_bad_payload_not_an_internal_error(
    runtime: Runtime, levels: int
) -> None:
    user = new_user(runtime)
    text = (
        json.dumps(nested(levels))
        if levels < 900
        else '{"a":' * (levels - 1) + '{"t":1' + "}" * levels
    )

    with (
        pytest.raises(psycopg.Error) as raised,
        psycopg.connect(libpq_url(runtime.database_url)) as connection,
    ):
        connection.execute("SELECT planner_notify(%s, %s::jsonb)", (user, text))

    assert raised.value.sqlstate == "22023"
    assert (raised.value.diag.message_primary or "").startswith(
        "payload: must not be nested deeper than 32 levels"
    )
    assert outbox_size(runtime) == 0


def test_a_payload_nested_32_deep_is_accepted(runtime: Runtime) -> None:
    user = new_user(runtime)
    with psycopg.connect(libpq_url(runtime.database_url)) as connection:
        row = connection.execute(
            "SELECT planner_notify(%s, %s)", (user, Jsonb(nested(32)))
        ).fetchone()
    assert row is not None
    with runtime.engine.connect() as c:
        body = c.scalar(sa.text("SELECT body FROM notifications"))
    assert compact_json_text(body) == json.dumps(nested(32), separators=(",", ":"))
