"""Room for the nightly updates: routine tasks and streaks at fillfactor 50.

The rollover updates every checked routine task and every streak of the users it closes, and a
batch holds whole pages of them: claims follow the heap's order, so the users of one page of
`streaks` (136 rows) are closed in one transaction. An update is HOT (no index entry, no index
page written) only if its new version fits on the old one's page; at fillfactor 80 (routine
tasks) and 100 (streaks) most did not. Measured with `bench/rollover.py` (20,000 users, each
with 3 of 5 routine steps checked): HOT updates 29 % → 100 % of routine tasks, 26 % → 100 % of
streaks, WAL per closed user-day 4,762 → 3,833 bytes. Each table takes twice the space (streaks:
about 60 bytes a user; routine tasks: about 100 bytes a step).

A fillfactor shapes the pages written from now on: existing rows move to roomier pages as
their updates leave full ones (or at once by `VACUUM FULL`, which locks the table).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE routine_tasks SET (fillfactor = 50)")
    op.execute("ALTER TABLE streaks SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE streaks RESET (fillfactor)")
    op.execute("ALTER TABLE routine_tasks SET (fillfactor = 80)")
