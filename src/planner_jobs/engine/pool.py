"""The job engine's connections: psycopg's pool, checking only the connections that sat idle,
and the connection its workers listen on, direct to PostgreSQL when the pool goes through
PgBouncer.

procrastinate asks its pool to check every connection it hands out (`check_connection`: an empty
query, one round trip). A busy worker runs a few queries per job, each on a connection used a
moment ago: the check doubled their round trips (measured on the `notifications.send` path). A
connection back in the pool for less than `FRESH_SECONDS` is handed out unchecked; an older one
is checked as before, so a connection the server dropped while it was idle is still replaced.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncGenerator
from typing import Any

import procrastinate
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from planner_jobs.db.engine import UTC_SESSION

FRESH_SECONDS = 1.0


def checked_when_idle(**pool_arguments: Any) -> AsyncConnectionPool[Any]:
    """An `AsyncConnectionPool` (the connector's `pool_factory`) that checks a connection only
    when it was returned to the pool more than `FRESH_SECONDS` ago."""
    returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()
    check = pool_arguments.pop("check", AsyncConnectionPool.check_connection)

    async def reset(connection: AsyncConnection[Any]) -> None:
        returned[connection] = time.monotonic()

    async def check_if_idle(connection: AsyncConnection[Any]) -> None:
        if time.monotonic() - returned.get(connection, 0.0) > FRESH_SECONDS:
            await check(connection)

    return AsyncConnectionPool(**pool_arguments, check=check_if_idle, reset=reset)


async def utc_session(connection: AsyncConnection[Any]) -> None:
    """The pool's `configure` through PgBouncer (which refuses the `options` parameter that
    sets the zone otherwise)."""
    await connection.execute(UTC_SESSION)
    await connection.commit()


class Connector(procrastinate.PsycopgConnector):
    """procrastinate's connector whose workers listen (LISTEN, a session of their own) on
    `listen_conninfo`: the database directly when the pool's connections go through PgBouncer
    in transaction pooling mode, where a LISTEN does not outlive its transaction. None: on the
    pool's own conninfo, as procrastinate does."""

    def __init__(self, *, listen_conninfo: str | None = None, **arguments: Any) -> None:
        super().__init__(**arguments)
        self._listen_conninfo = listen_conninfo

    @contextlib.asynccontextmanager
    async def _get_standalone_connection(self) -> AsyncGenerator[AsyncConnection[Any]]:
        if self._listen_conninfo is None:
            async with super()._get_standalone_connection() as connection:
                yield connection
            return
        async with await AsyncConnection.connect(
            self._listen_conninfo, autocommit=True
        ) as connection:
            yield connection
