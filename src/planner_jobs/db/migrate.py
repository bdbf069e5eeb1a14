"""Creating and upgrading the schema: our tables (Alembic) and procrastinate's, in one history.

Several processes may start at once (`run` on two machines): a transaction-scoped advisory lock
makes them migrate one after the other, and PostgreSQL's transactional DDL makes each upgrade all
or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions (tests/migration checks it against alembic's
# own reading): knowing it without alembic keeps the schema check of every command light.
HEAD = "0008"
_MIGRATION_LOCK = 0x706C616E6E6572  # "planner": one advisory lock key for every migrator


@dataclass(frozen=True)
class MigrationResult:
    before: str | None
    after: str | None

    def summary(self) -> str:
        if self.before == self.after:
            return f"schema is up to date (revision {self.after})"
        return f"schema upgraded from revision {self.before or 'none'} to {self.after}"


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


def migrate(engine: Engine, revision: str = "head") -> MigrationResult:
    """Bring the schema to `revision` (idempotent)."""
    with engine.begin() as connection:
        from alembic import command

        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        before = current_revision(connection)
        command.upgrade(alembic_config(connection), revision)
        return MigrationResult(before=before, after=current_revision(connection))


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
