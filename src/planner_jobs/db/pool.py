"""The job engine's connection pool: psycopg's, checking only the connections that sat idle.

procrastinate asks its pool to check every connection it hands out (`check_connection`: an empty
query, one round trip). A busy worker runs a few queries per job, each on a connection used a
moment ago: the check doubled their round trips (measured on the `notifications.send` path). A
connection back in the pool for less than `FRESH_SECONDS` is handed out unchecked; an older one
is checked as before, so a connection the server dropped while it was idle is still replaced.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

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
