"""The database alone, for the commands that only read it and act on jobs (`status`, `jobs`):
no job engine, storage or push service to build, nor their libraries to load."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from planner_jobs.db.embedded import resolve_database_url
from planner_jobs.db.engine import check_connection, create_engine
from planner_jobs.db.engine import redacted as redacted  # the URL as operators see it
from planner_jobs.db.migrate import ensure_schema_current
from planner_jobs.settings import Settings


@contextlib.contextmanager
def open_database(settings: Settings) -> Iterator[Engine]:
    """An engine of one connection on the settings' database, its schema checked current."""
    engine = create_engine(resolve_database_url(settings), pool_size=1, pooled=settings.pooled)
    try:
        check_connection(engine)
        ensure_schema_current(engine)
        yield engine
    finally:
        engine.dispose()
