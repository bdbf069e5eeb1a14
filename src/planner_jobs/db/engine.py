"""Connecting to PostgreSQL: one SQLAlchemy engine per process, built from a URL."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from psycopg.adapt import PyFormat
from psycopg.types.array import BaseListDumper, ListBinaryDumper, ListDumper
from sqlalchemy.engine import URL, Engine, make_url

from planner_jobs.errors import DatabaseUnavailable

CONNECT_TIMEOUT_SECONDS = 5
RECONNECT_WAITS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # seconds between attempts: 18.7 s in all

log = logging.getLogger(__name__)
T = TypeVar("T")


def sqlalchemy_url(url: str) -> URL:
    """The URL with the psycopg 3 driver, whatever scheme the operator wrote."""
    return make_url(url).set(drivername="postgresql+psycopg")


def libpq_url(url: str) -> str:
    """The URL as libpq (psycopg, procrastinate) reads it."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def libpq_url_of(engine: Engine) -> str:
    """The URL an engine connects to, as libpq reads it (for a connection of our own)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


# Every session works in UTC, so date arithmetic never depends on the server's zone: set at
# connection through libpq's `options`, or, through PgBouncer, which refuses that startup
# parameter, by this statement (PgBouncer then keeps the zone on every server connection it
# lends the client).
UTC_SESSION = "SET timezone TO 'UTC'"


def connect_kwargs(
    application_name: str = "planner-jobs", *, pooled: bool = False
) -> dict[str, str | int]:
    """The libpq parameters of every connection. `pooled`: through PgBouncer in transaction
    pooling mode (no `options`: run `UTC_SESSION` once connected)."""
    parameters: dict[str, str | int] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "application_name": application_name,
    }
    if not pooled:
        parameters["options"] = "-c timezone=UTC"
    return parameters


def driver_kwargs(*, pooled: bool) -> dict[str, Any]:
    """psycopg's options: through a transaction pooler a prepared statement would live on a
    server connection the next transaction may not get (PgBouncer 1.18 keeps none), so psycopg
    prepares nothing."""
    return {"prepare_threshold": None} if pooled else {}


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    application_name: str = "planner-jobs",
    pooled: bool = False,
) -> Engine:
    """An engine on `url`; `pooled`: `url` is PgBouncer in transaction pooling mode."""
    engine = sa.create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={
            **connect_kwargs(application_name, pooled=pooled),
            **driver_kwargs(pooled=pooled),
        },
    )
    sa.event.listen(engine, "connect", _send_lists_in_binary)
    if pooled:
        sa.event.listen(engine, "connect", _utc_session)
    return engine


def _utc_session(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(UTC_SESSION)
    dbapi_connection.commit()


def _send_lists_in_binary(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.adapters.register_dumper(list, _BinaryWherePossibleListDumper)


class _BinaryWherePossibleListDumper(ListBinaryDumper):
    """Send a list as a binary array when its elements have a binary form, else as text.

    The set-based statements pass thousands of values as arrays; psycopg's default text format
    escapes every element with a regex (measured: a third of the rollover's time). Lists of
    composite values (the job engine's jobs to defer) only dump as text.
    """

    def upgrade(self, obj: list[Any], format: PyFormat) -> BaseListDumper:
        item = next((value for value in obj if value is not None), None)
        if item is not None:
            try:
                self._tx.get_dumper(item, PyFormat.BINARY)
            except psycopg.ProgrammingError:
                return ListDumper(self.cls, self._tx).upgrade(obj, format)
        return super().upgrade(obj, format)


def check_connection(engine: Engine) -> None:
    """Raise `DatabaseUnavailable` with the driver's one-line reason when the database is down."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database at {redacted(engine.url)}: {first_line(exc.orig)}"
        ) from exc


_NOW = sa.select(sa.func.now())


def database_now(connection: sa.Connection) -> dt.datetime:
    """The database's clock, which every worker and the job engine share: the start of the
    connection's current transaction."""
    now: dt.datetime = connection.execute(_NOW).scalar_one()
    return now


def redacted(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def first_line(error: BaseException | None) -> str:
    text = str(error).strip() if error is not None else "unknown error"
    return text.splitlines()[0] if text else type(error).__name__


def with_reconnects(work: Callable[[], T], *, waits: tuple[float, ...] = RECONNECT_WAITS) -> T:
    """`work()`, again on a new connection when the one it ran on was lost (the server
    restarted, an operator terminated it): for a transaction that is safe to repeat and
    costly to lose, such as recording what a push service already accepted."""
    for wait in waits:
        try:
            return work()
        except sa.exc.OperationalError as exc:
            log.warning(
                "database connection lost (%s): trying again in %s s", first_line(exc.orig), wait
            )
            time.sleep(wait)
    return work()
