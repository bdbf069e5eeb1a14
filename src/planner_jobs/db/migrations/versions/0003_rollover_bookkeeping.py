"""Rollover bookkeeping on users, and the indexes of the rollover tick and the token cleanup.

The columns are nullable: rows that other programs insert (contract columns only) have NULL,
which the rollover reads as "not planned yet".

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("rollover_next_date", sa.Date(), nullable=True))
    op.add_column("users", sa.Column("rollover_due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("rollover_zone", sa.Text(), nullable=True))
    op.add_column(
        "users", sa.Column("rollover_retry_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("users", sa.Column("rollover_error", sa.Text(), nullable=True))
    op.create_index(
        "ix_users_password_reset_expires",
        "users",
        ["password_reset_expires"],
        unique=False,
        postgresql_where=sa.text("password_reset_expires IS NOT NULL"),
    )
    op.create_index("ix_users_rollover_due_at", "users", ["rollover_due_at"], unique=False)
    op.create_index(
        "ix_users_rollover_unplanned",
        "users",
        ["id"],
        unique=False,
        postgresql_where=sa.text(
            "rollover_due_at IS NULL OR rollover_zone IS DISTINCT FROM timezone"
        ),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_users_rollover_unplanned",
        table_name="users",
        postgresql_where=sa.text(
            "rollover_due_at IS NULL OR rollover_zone IS DISTINCT FROM timezone"
        ),
    )
    op.drop_index("ix_users_rollover_due_at", table_name="users")
    op.drop_index(
        "ix_users_password_reset_expires",
        table_name="users",
        postgresql_where=sa.text("password_reset_expires IS NOT NULL"),
    )
    op.drop_column("users", "rollover_error")
    op.drop_column("users", "rollover_retry_at")
    op.drop_column("users", "rollover_zone")
    op.drop_column("users", "rollover_due_at")
    op.drop_column("users", "rollover_next_date")
