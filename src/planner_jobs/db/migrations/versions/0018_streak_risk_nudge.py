"""The streak-at-risk nudge: `users.streak_reminder_at` (the main app's), and where each stands.

A user with `streak_reminder_at` is nudged at that local time on each of their dates when the
streak is at stake and the day does not meet the goal so far. As for routine reminders (0017),
the reminders sweep plans each user's next nudge in Python and keeps it in three columns: the
date (`streak_nudge_date`), the instant (`streak_nudge_at`, indexed where a nudge is set: the
sweep's claim) and the `streak_reminder_at` it was planned from (`streak_nudge_time`: a changed
time is "unplanned", found by its own partial index). Users without a nudge are in neither index.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UNPLANNED = (
    "streak_reminder_at IS NOT NULL"
    " AND (streak_nudge_at IS NULL OR streak_nudge_time IS DISTINCT FROM streak_reminder_at)"
)


def upgrade() -> None:
    op.add_column("users", sa.Column("streak_reminder_at", sa.Time(), nullable=True))
    op.add_column("users", sa.Column("streak_nudge_date", sa.Date(), nullable=True))
    op.add_column("users", sa.Column("streak_nudge_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("streak_nudge_time", sa.Time(), nullable=True))
    op.create_index(
        "ix_users_streak_nudge_at",
        "users",
        ["streak_nudge_at"],
        postgresql_where=sa.text("streak_reminder_at IS NOT NULL"),
    )
    op.create_index(
        "ix_users_streak_nudge_unplanned", "users", ["id"], postgresql_where=sa.text(UNPLANNED)
    )


def downgrade() -> None:
    op.drop_index("ix_users_streak_nudge_unplanned", table_name="users")
    op.drop_index("ix_users_streak_nudge_at", table_name="users")
    for column in (
        "streak_nudge_time",
        "streak_nudge_at",
        "streak_nudge_date",
        "streak_reminder_at",
    ):
        op.drop_column("users", column)
