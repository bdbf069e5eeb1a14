"""Exports: one active export per user, the retention index. Push: the delivery records.
Reminders: the reminded value on tasks and the index of the reminder tick.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_deliveries",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("urgency", sa.Text(), server_default=sa.text("'normal'"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_status", sa.SmallInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'rejected', 'failed')",
            name=op.f("ck_push_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["push_subscriptions.id"],
            name=op.f("fk_push_deliveries_subscription_id_push_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_push_deliveries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "notification_id", "subscription_id", name=op.f("pk_push_deliveries")
        ),
    )
    op.create_index(
        "ix_push_deliveries_due",
        "push_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_push_deliveries_subscription_id"),
        "push_deliveries",
        ["subscription_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_push_deliveries_user_id"), "push_deliveries", ["user_id"], unique=False
    )
    op.create_index(
        "ix_export_jobs_expires_at",
        "export_jobs",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'complete'"),
    )
    op.create_index(
        "ux_export_jobs_one_active_per_user",
        "export_jobs",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.add_column("tasks", sa.Column("reminded_for", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_tasks_reminder_due",
        "tasks",
        ["remind_at"],
        unique=False,
        postgresql_where=sa.text(
            "remind_at IS NOT NULL AND NOT completed AND remind_at IS DISTINCT FROM reminded_for"
        ),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_tasks_reminder_due",
        table_name="tasks",
        postgresql_where=sa.text(
            "remind_at IS NOT NULL AND NOT completed AND remind_at IS DISTINCT FROM reminded_for"
        ),
    )
    op.drop_column("tasks", "reminded_for")
    op.drop_index(
        "ux_export_jobs_one_active_per_user",
        table_name="export_jobs",
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.drop_index(
        "ix_export_jobs_expires_at",
        table_name="export_jobs",
        postgresql_where=sa.text("status = 'complete'"),
    )
    op.drop_index(op.f("ix_push_deliveries_user_id"), table_name="push_deliveries")
    op.drop_index(op.f("ix_push_deliveries_subscription_id"), table_name="push_deliveries")
    op.drop_index(
        "ix_push_deliveries_due",
        table_name="push_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("push_deliveries")
