"""Scheduled exports: `export_schedules` (the main app's) and `export_jobs.source`.

A user with a schedule gets an export each day, week or month, right after the rollover closes
the last date of the period. The rollover marks the schedule due (`due_date`: that date) in the
transaction that closes it, and starts the export there when the user has none on its way; one
that waits for the user's active export is started in the transaction that finishes that one.
A scheduled export is `source = 'schedule'`: the request quota counts only requests, and the
retention sweep keeps the newest `keep` complete scheduled exports of a user. `source` has a
constant default: adding it rewrites no row. The live status events carry it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_QUOTA_BEFORE = """
             WHERE job.user_id = planner_request_export.user_id
             ORDER BY job.created_at DESC"""
_QUOTA_AFTER = """
             WHERE job.user_id = planner_request_export.user_id AND job.source = 'request'
             ORDER BY job.created_at DESC"""

_EVENT = """
        CREATE OR REPLACE FUNCTION planner_export_status_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('planner_export_status', json_build_object(
                'id', NEW.id, 'user_id', NEW.user_id, 'format', NEW.format,
                'status', NEW.status, 'created_at', NEW.created_at,
                'completed_at', NEW.completed_at, 'expires_at', NEW.expires_at,
                'storage_key', NEW.storage_key, 'error', left(NEW.error, 1000){source})::text);
            RETURN NULL;
        END $$
        """


def _request_export(schema: str, *, requests_only: bool) -> str:
    """Revision 0010's `planner_request_export()`, its quota reading requests only or not."""
    text: str = earlier_revision("0010_commit_without_notify.py").request_export(schema)
    assert _QUOTA_BEFORE in text
    return text.replace(_QUOTA_BEFORE, _QUOTA_AFTER) if requests_only else text


def upgrade() -> None:
    op.create_table(
        "export_schedules",
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("every", sa.Text(), nullable=False),
        sa.Column("keep", sa.SmallInteger(), server_default=sa.text("4"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.CheckConstraint("format IN ('json', 'csv', 'markdown')", name="format"),
        sa.CheckConstraint("every IN ('day', 'week', 'month')", name="every"),
        sa.CheckConstraint("keep BETWEEN 1 AND 30", name="keep"),
    )
    op.add_column(
        "export_jobs",
        sa.Column("source", sa.Text(), server_default=sa.text("'request'"), nullable=False),
    )
    op.create_check_constraint("source", "export_jobs", "source IN ('request', 'schedule')")
    # The retention sweep reads a user's complete scheduled exports, newest first.
    op.create_index(
        "ix_export_jobs_scheduled_complete",
        "export_jobs",
        ["user_id", "created_at"],
        postgresql_where=sa.text("source = 'schedule' AND status = 'complete'"),
    )
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute(_request_export(schema, requests_only=True))
    op.execute(_EVENT.format(source=", 'source', NEW.source"))


def downgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute(_EVENT.format(source=""))
    op.execute(_request_export(schema, requests_only=False))
    op.drop_index("ix_export_jobs_scheduled_complete", table_name="export_jobs")
    op.drop_constraint("source", "export_jobs", type_="check")
    op.drop_column("export_jobs", "source")
    op.drop_table("export_schedules")
