"""A user's own day boundary: `users.day_starts_at` (00:00 to 11:59, midnight by default).

The rollover closes a date at the user's boundary, and reads every "inside D" rule on it.
`rollover_day_starts_at` records the boundary `rollover_due_at` was computed at, as
`rollover_zone` records the zone: a change of either makes the user "unplanned", and the next
tick computes when the open date falls due at the new boundary (no date reopened or skipped).
Both columns have a constant default, so adding them rewrites no row, and every user planned
before stays planned.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BEFORE = "rollover_due_at IS NULL OR rollover_zone IS DISTINCT FROM timezone"
AFTER = BEFORE + " OR rollover_day_starts_at IS DISTINCT FROM day_starts_at"


def upgrade() -> None:
    for column in ("day_starts_at", "rollover_day_starts_at"):
        op.add_column(
            "users",
            sa.Column(column, sa.Time(), server_default=sa.text("'00:00'"), nullable=False),
        )
    op.create_check_constraint("day_starts_before_noon", "users", "day_starts_at < '12:00'")
    op.drop_index("ix_users_rollover_unplanned", table_name="users")
    op.create_index("ix_users_rollover_unplanned", "users", ["id"], postgresql_where=sa.text(AFTER))


def downgrade() -> None:
    op.drop_index("ix_users_rollover_unplanned", table_name="users")
    op.create_index(
        "ix_users_rollover_unplanned", "users", ["id"], postgresql_where=sa.text(BEFORE)
    )
    op.drop_constraint("day_starts_before_noon", "users", type_="check")
    op.drop_column("users", "rollover_day_starts_at")
    op.drop_column("users", "day_starts_at")
