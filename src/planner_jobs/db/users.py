"""Users, as the jobs look them up."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from planner_jobs.db.models import User

_EXISTS = sa.select(sa.literal(True)).where(User.id == sa.bindparam("user_id", type_=sa.Uuid()))


def user_exists(connection: sa.Connection, user_id: uuid.UUID) -> bool:
    return connection.scalar(_EXISTS, {"user_id": user_id}) is not None
