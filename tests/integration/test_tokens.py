from __future__ import annotations

import datetime as dt
import threading
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.jobs.tokens import cleanup_tokens
from tests.data import add_user, utc

NOW = utc("2026-03-08T12:00")


def user_with_token(
    connection: sa.Connection, expires: dt.datetime | None, token: str | None = "t0k3n"
) -> uuid.UUID:
    user = add_user(connection, created_at=utc("2026-01-01T00:00"))
    connection.execute(
        sa.text(
            "UPDATE users SET password_reset_token = :t, password_reset_expires = :e WHERE id = :u"
        ),
        {"t": token, "e": expires, "u": user},
    )
    return user


def token_of(engine: Engine, user: uuid.UUID) -> tuple[str | None, dt.datetime | None]:
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT password_reset_token, password_reset_expires FROM users WHERE id = :u"),
            {"u": user},
        ).one()
    return (row.password_reset_token, row.password_reset_expires)


def test_only_tokens_that_expired_before_now_are_cleared(engine: Engine) -> None:
    with engine.begin() as c:
        expired = user_with_token(c, NOW - dt.timedelta(microseconds=1))
        expiring_now = user_with_token(c, NOW)
        valid = user_with_token(c, NOW + dt.timedelta(minutes=5))
        no_expiry = user_with_token(c, None)
        stale_expiry = user_with_token(c, NOW - dt.timedelta(days=2), token=None)
        before = {
            row.id: tuple(row)[1:]
            for row in c.execute(
                sa.text("SELECT id, email, timezone, created_at, carry_over FROM users")
            )
        }

    summary = cleanup_tokens(engine, now=NOW)

    assert summary.cleared == 2
    assert summary.line().startswith("cleared 2 expired password-reset tokens in ")
    assert token_of(engine, expired) == (None, None)
    assert token_of(engine, stale_expiry) == (None, None)
    assert token_of(engine, expiring_now) == ("t0k3n", NOW)
    assert token_of(engine, valid) == ("t0k3n", NOW + dt.timedelta(minutes=5))
    assert token_of(engine, no_expiry) == ("t0k3n", None)
    with engine.connect() as c:
        after = {
            row.id: tuple(row)[1:]
            for row in c.execute(
                sa.text("SELECT id, email, timezone, created_at, carry_over FROM users")
            )
        }
    assert after == before  # nothing else touched


def test_many_expired_tokens_are_cleared_in_batches(engine: Engine) -> None:
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO users (email, password_reset_token, password_reset_expires)"
                " SELECT 'u' || n || '@example.com', 'tok', :e FROM generate_series(1, 2500) AS n"
            ),
            {"e": NOW - dt.timedelta(hours=1)},
        )

    summary = cleanup_tokens(engine, now=NOW, batch_size=1000)

    assert summary.cleared == 2500
    with engine.connect() as c:
        assert (
            c.scalar(sa.text("SELECT count(*) FROM users WHERE password_reset_token IS NOT NULL"))
            == 0
        )


def test_a_user_locked_by_someone_else_is_skipped_not_waited_for(engine: Engine) -> None:
    with engine.begin() as c:
        busy = user_with_token(c, NOW - dt.timedelta(hours=1))
        idle = user_with_token(c, NOW - dt.timedelta(hours=1))
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with engine.begin() as c:
            c.execute(sa.text("SELECT 1 FROM users WHERE id = :u FOR UPDATE"), {"u": busy})
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    try:
        summary = cleanup_tokens(engine, now=NOW)
    finally:
        release.set()
        holder.join()

    assert summary.cleared == 1
    assert token_of(engine, idle) == (None, None)
    assert token_of(engine, busy)[0] == "t0k3n"
