"""Routine reminders: `routine_tasks.remind_time` (the main app's), and where each stands.

A routine task with `remind_time` is reminded once each of its user's dates, at that local time.
The reminders sweep plans each one's next reminder in Python (the zone's DST rules, the user's
day boundary) and keeps it in three columns: the date (`reminder_date`), the instant
(`reminder_at`, indexed where a reminder is set: the sweep's claim) and the `remind_time` it was
planned from (`reminder_time`: a changed time is "unplanned", found by its own partial index).
The nightly reset of routine tasks writes none of the indexed columns: it stays a HOT update.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UNPLANNED = (
    "remind_time IS NOT NULL"
    " AND (reminder_at IS NULL OR reminder_time IS DISTINCT FROM remind_time)"
)


def upgrade() -> None:
    op.add_column("routine_tasks", sa.Column("remind_time", sa.Time(), nullable=True))
    op.add_column("routine_tasks", sa.Column("reminder_date", sa.Date(), nullable=True))
    op.add_column(
        "routine_tasks", sa.Column("reminder_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("routine_tasks", sa.Column("reminder_time", sa.Time(), nullable=True))
    op.create_index(
        "ix_routine_tasks_reminder_at",
        "routine_tasks",
        ["reminder_at"],
        postgresql_where=sa.text("remind_time IS NOT NULL"),
    )
    op.create_index(
        "ix_routine_tasks_reminder_unplanned",
        "routine_tasks",
        ["id"],
        postgresql_where=sa.text(UNPLANNED),
    )


def downgrade() -> None:
    op.drop_index("ix_routine_tasks_reminder_unplanned", table_name="routine_tasks")
    op.drop_index("ix_routine_tasks_reminder_at", table_name="routine_tasks")
    for column in ("reminder_time", "reminder_at", "reminder_date", "remind_time"):
        op.drop_column("routine_tasks", column)
