"""Streaks that forgive, and quiet hours: what the main app sets, and what closing a day did.

- `users.days_off` (a bit mask of ISO weekdays, bit 0 = Monday), `users.vacation_start` and
  `users.vacation_end` (inclusive local dates), `users.quiet_hours_start` and
  `users.quiet_hours_end` (local wall-clock times, the window may wrap midnight);
- `streaks.freezes`: freezes held (earned by the rollover, spent on a missed day, granted by
  the main app);
- `performance_history.streak_effect`: what closing the day did to the streak (null on the rows
  closed before this revision).

All defaulted or nullable: rows the main app wrote before keep working unchanged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

EFFECTS = ("extended", "vacation", "day_off", "freeze", "reset")


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("days_off", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("users", sa.Column("vacation_start", sa.Date(), nullable=True))
    op.add_column("users", sa.Column("vacation_end", sa.Date(), nullable=True))
    op.add_column("users", sa.Column("quiet_hours_start", sa.Time(), nullable=True))
    op.add_column("users", sa.Column("quiet_hours_end", sa.Time(), nullable=True))
    op.create_check_constraint(
        op.f("ck_users_days_off_mask"), "users", "days_off BETWEEN 0 AND 127"
    )
    op.add_column(
        "streaks",
        sa.Column("freezes", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.create_check_constraint(op.f("ck_streaks_freezes_not_negative"), "streaks", "freezes >= 0")
    op.add_column("performance_history", sa.Column("streak_effect", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_performance_history_streak_effect"),
        "performance_history",
        "streak_effect IN (" + ", ".join(f"'{e}'" for e in EFFECTS) + ")",
    )


def downgrade() -> None:
    op.drop_constraint("ck_performance_history_streak_effect", "performance_history")
    op.drop_column("performance_history", "streak_effect")
    op.drop_constraint("ck_streaks_freezes_not_negative", "streaks")
    op.drop_column("streaks", "freezes")
    op.drop_constraint("ck_users_days_off_mask", "users")
    for column in ("quiet_hours_end", "quiet_hours_start", "vacation_end", "vacation_start"):
        op.drop_column("users", column)
    op.drop_column("users", "days_off")
