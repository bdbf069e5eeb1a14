"""The notifications prune walks the outbox by id: no index of `created_at`.

The nightly prune forgets the notifications of more than a week ago a batch of 5,000 at a time,
in the order of their ids (the order of arrival: `jobs.notifications.prune_notifications`),
through the primary key. The BRIN index of `created_at` (migration 0019), which served the
prune's single DELETE, is read by nothing now: dropping it takes one index off every
notification the main app raises.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_notifications_created_at", table_name="notifications")


def downgrade() -> None:
    op.create_index(
        "ix_notifications_created_at", "notifications", ["created_at"], postgresql_using="brin"
    )
