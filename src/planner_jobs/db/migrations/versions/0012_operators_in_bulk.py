"""What operators act on in bulk: paused queues, the jobs about one user, the workers' processes.

- `queue_pauses`: a queue paused by an operator (`planner-jobs jobs pause QUEUE`) until resumed;
  a row, so the pause outlives every process. Workers read it every second.
- The jobs about a user are found by two indexes, so `jobs list --user` costs a few lookups
  however many jobs are kept: `ix_procrastinate_jobs_subject` on the user or export a job names
  (`notifications.send` carries `userId`, `exports.build` its `export_id`), and
  `ix_procrastinate_jobs_notifications` on the notifications a `notifications.deliver` job
  delivers (`planner_job_notification_ids(args)`, the ids as an array: a GIN index answers "any
  of the user's notifications" with `&&`). Both are partial: the other jobs (the periodic ticks)
  add no entry.
- `worker_processes`: where each live worker runs (host, pid, queues, when it started), written
  by the worker once procrastinate has registered it; the rows of workers procrastinate has
  forgotten are deleted as the next one starts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SUBJECT = "coalesce(args->>'userId', args->>'export_id')"


def upgrade() -> None:
    op.create_table(
        "queue_pauses",
        sa.Column("queue", sa.Text(), primary_key=True),
        sa.Column(
            "paused_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.create_table(
        "worker_processes",
        sa.Column("worker_id", sa.BigInteger(), primary_key=True),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.execute(
        """
        CREATE FUNCTION planner_job_notification_ids(args jsonb) RETURNS bigint[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN jsonb_typeof(args->'notificationIds') = 'array' THEN ARRAY(
                SELECT trunc(id::numeric)::bigint
                  FROM jsonb_array_elements(args->'notificationIds') AS ids(id)
                 WHERE jsonb_typeof(id) = 'number' AND abs(id::numeric) < 9e18)
            END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION planner_job_notification_ids(jsonb) FROM PUBLIC")
    op.execute(
        f"CREATE INDEX ix_procrastinate_jobs_subject ON procrastinate_jobs (({SUBJECT}))"
        f" WHERE {SUBJECT} IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_procrastinate_jobs_notifications ON procrastinate_jobs"
        " USING gin (planner_job_notification_ids(args))"
        " WHERE task_name = 'notifications.deliver'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_procrastinate_jobs_notifications")
    op.execute("DROP INDEX ix_procrastinate_jobs_subject")
    op.execute("DROP FUNCTION planner_job_notification_ids(jsonb)")
    op.drop_table("worker_processes")
    op.drop_table("queue_pauses")
