"""Operators' views: the failures of every attempt, and the indexes the inspection reads through.

- `job_failures`: the exception, message, traceback, attempt and worker of each failed attempt
  (procrastinate keeps none), deleted when their job is pruned (no foreign key to
  procrastinate's table: its revisions stay its own).
- `job_counts`: jobs finished per minute, queue, task and outcome, added up by each worker and
  written every few seconds (the dashboard's chart, the last hour's successes).
- Indexes of our own on procrastinate's tables (named `planner_*`), so every view is an index
  lookup whatever the number of finished jobs: jobs not succeeded by status and queue (counts,
  the oldest ready job, failed and running lists), jobs by task and status (lists by task, the
  last success of each periodic task), events by time (the jobs of the last hour).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UNFINISHED = sa.text("status <> 'succeeded'")


def upgrade() -> None:
    op.create_table(
        "job_failures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=True),
        sa.Column("exception", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=False),
        sa.Column(
            "failed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_failures")),
    )
    op.create_index(op.f("ix_job_failures_job_id"), "job_failures", ["job_id"])
    op.create_table(
        "job_counts",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "queue", "task", "outcome", name=op.f("pk_job_counts")),
    )
    op.create_index(
        "ix_users_rollover_retry_at",
        "users",
        ["rollover_retry_at"],
        postgresql_where=sa.text("rollover_retry_at IS NOT NULL"),
    )
    op.create_index("ix_export_jobs_created_at", "export_jobs", ["created_at"])
    op.create_index(
        "ix_export_jobs_status",
        "export_jobs",
        ["status"],
        postgresql_where=sa.text("status <> 'expired'"),
    )
    op.create_index(
        "planner_jobs_unfinished",
        "procrastinate_jobs",
        ["status", "queue_name", "id"],
        postgresql_where=UNFINISHED,
    )
    op.create_index("planner_jobs_task_status", "procrastinate_jobs", ["task_name", "status", "id"])
    op.create_index("planner_events_at", "procrastinate_events", ["at"])


def downgrade() -> None:
    op.drop_index(
        "ix_export_jobs_status",
        table_name="export_jobs",
        postgresql_where=sa.text("status <> 'expired'"),
    )
    op.drop_index(
        "ix_users_rollover_retry_at",
        table_name="users",
        postgresql_where=sa.text("rollover_retry_at IS NOT NULL"),
    )
    op.drop_index("ix_export_jobs_created_at", table_name="export_jobs")
    op.drop_table("job_counts")
    op.drop_index("planner_events_at", table_name="procrastinate_events")
    op.drop_index("planner_jobs_task_status", table_name="procrastinate_jobs")
    op.drop_index(
        "planner_jobs_unfinished", table_name="procrastinate_jobs", postgresql_where=UNFINISHED
    )
    op.drop_index(op.f("ix_job_failures_job_id"), table_name="job_failures")
    op.drop_table("job_failures")
