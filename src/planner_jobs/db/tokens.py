"""Password-reset token cleanup, in short batches so no statement holds many row locks for long."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from planner_jobs.db.models import User


def clear_expired_tokens(connection: sa.Connection, *, now: dt.datetime, limit: int) -> int:
    """Clear token and expiry of up to `limit` users whose token expired before `now`.

    Reads the partial index on `password_reset_expires`; rows locked by someone else (a user
    resetting their password right now) are skipped, not waited for.
    """
    expired = (
        sa.select(User.id)
        .where(User.password_reset_expires < now)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)  # FOR NO KEY UPDATE, as the UPDATE
        .scalar_subquery()
    )
    result = connection.execute(
        sa.update(User)
        .where(User.id.in_(expired))
        .values(password_reset_token=None, password_reset_expires=None)
    )
    return result.rowcount
