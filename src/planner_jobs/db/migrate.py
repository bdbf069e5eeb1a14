"""Creating and upgrading the schema: our tables (Alembic) and procrastinate's, in one history;
and granting other programs' roles the way in.

Several processes may start at once (`run` on two machines): a transaction-scoped advisory lock
makes them migrate one after the other, and PostgreSQL's transactional DDL makes each upgrade all
or nothing.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.errors import DatabaseUnavailable, UsageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions (tests/migration checks it against alembic's
# own reading): knowing it without alembic keeps the schema check of every command light.
HEAD = "0027"
_MIGRATION_LOCK = 0x706C616E6E6572  # "planner": one advisory lock key for every migrator
# The functions other programs call (docs/CONTRACT.md, "Raising work from other programs"):
# SECURITY DEFINER, EXECUTE revoked from PUBLIC, granted by `planner-jobs grant ROLE`.
WAY_IN = (
    "planner_notify(uuid, jsonb, text, text, integer, text)",
    "planner_request_export(uuid, text)",
)


@dataclass(frozen=True)
class MigrationResult:
    before: str | None
    after: str | None

    def summary(self) -> str:
        if self.before == self.after:
            return f"schema is up to date (revision {self.after})"
        return f"schema upgraded from revision {self.before or 'none'} to {self.after}"


def earlier_revision(file_name: str) -> ModuleType:
    """The module of an earlier revision, for a migration that puts back or builds on its
    definitions (revision files are named by number: no import statement reaches them)."""
    path = MIGRATIONS_DIR / "versions" / file_name
    spec = importlib.util.spec_from_file_location(f"planner_revision_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no migration file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alembic_config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version ships."""
    return HEAD


def current_revision(connection: sa.Connection) -> str | None:
    """The schema's revision (None: not migrated), read as alembic writes it."""
    if connection.scalar(sa.text("SELECT to_regclass('alembic_version')")) is None:
        return None
    revision: str | None = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    return revision


def migrate(
    engine: Engine, revision: str = "head", *, development: bool | None = None
) -> MigrationResult:
    """Bring the schema to `revision` (idempotent). `development`, when given, is written for
    the database's own rules (`planner_settings`: a link in a notification may be `http:`)."""
    with engine.begin() as connection:
        from alembic import command

        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        before = current_revision(connection)
        command.upgrade(alembic_config(connection), revision)
        after = current_revision(connection)
        has_settings = connection.scalar(sa.text("SELECT to_regclass('planner_settings')"))
        if development is not None and has_settings is not None:
            connection.execute(
                sa.text(
                    "UPDATE planner_settings SET development = :development"
                    " WHERE development IS DISTINCT FROM :development"
                ),
                {"development": development},
            )
        return MigrationResult(before=before, after=after)


def ensure_schema_current(engine: Engine) -> None:
    """Refuse to run workers or the API on a schema that `migrate` has not brought up to date."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        raise DatabaseUnavailable(
            f"the database schema is at revision {current or 'none'}, this version needs "
            f"{head}: run `planner-jobs migrate` first"
        )


@dataclass(frozen=True)
class Grant:
    role: str
    schema: str
    schema_usage_granted: bool  # the role could not use the schema before

    def summary(self) -> str:
        usage = f" and USAGE on schema {self.schema}" if self.schema_usage_granted else ""
        functions = ", ".join(f.split("(")[0] + "()" for f in WAY_IN)
        return f"granted {self.role} EXECUTE on {functions}{usage}"


def grant_way_in(engine: Engine, role: str) -> Grant:
    """Let `role` (an existing role) call the functions of the way in, and nothing more (USAGE
    on our schema too when it lacks it: without it no function of the schema can be named).
    Idempotent. The functions run as their owner, so the role needs no right on any table."""
    from psycopg import sql

    ensure_schema_current(engine)
    with engine.begin() as connection:
        known = connection.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if known is None:
            raise UsageError(f"there is no role {role!r} in this database server")
        schema = str(connection.scalar(sa.text("SELECT current_schema()")))
        needs_usage = not connection.scalar(
            sa.text("SELECT has_schema_privilege(:r, :s, 'USAGE')"), {"r": role, "s": schema}
        )
        statements = [
            sql.SQL("GRANT EXECUTE ON FUNCTION {}.{} TO {}").format(
                sql.Identifier(schema), sql.SQL(function), sql.Identifier(role)
            )
            for function in WAY_IN
        ]
        if needs_usage:
            statements.insert(
                0,
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                ),
            )
        driver = connection.connection.driver_connection
        for statement in statements:
            connection.exec_driver_sql(statement.as_string(driver))
    return Grant(role=role, schema=schema, schema_usage_granted=needs_usage)
