"""The export-ready e-mail: one row per export that is to be e-mailed.

`export_emails` is written in the transaction that completes an export (when
PLANNER_EXPORT_EMAIL says so, and only with PLANNER_SMTP_URL set), with the `emails.send` job.
The job holds the row while the mail server takes the message and records the outcome in that
same transaction: a message is sent at most once, however often the job runs, and the export
itself is complete whatever happens to its e-mail.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_emails",
        sa.Column(
            "export_id",
            postgresql.UUID(),
            sa.ForeignKey("export_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    )
    op.create_index(
        "ix_export_emails_waiting",
        "export_emails",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("export_emails")
