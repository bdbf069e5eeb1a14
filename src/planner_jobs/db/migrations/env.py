"""Alembic environment: migrations run on the connection `planner_jobs.db.migrate` hands in.

Run from the `alembic` command line (developers writing a revision), it connects the way the
service does: `PLANNER_DATABASE_URL`, else the embedded server.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from planner_jobs.db.models import Base


def _only_our_tables(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # procrastinate's tables live in the same database but are not described by our models.
    return not (type_ == "table" and reflected and compare_to is None)


def _configure_and_run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=_only_our_tables,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
else:
    from planner_jobs.db.embedded import resolve_database_url
    from planner_jobs.db.engine import create_engine
    from planner_jobs.settings import load_settings

    settings = load_settings()
    engine = create_engine(settings.direct_database_url or resolve_database_url(settings))
    with engine.begin() as own_connection:
        _configure_and_run(own_connection)
    engine.dispose()
