"""An export's change of status is announced: `NOTIFY planner_export_status` with the export's
row as it is after the change (JSON: its columns but the download link, well under the 8,000
bytes a notification holds).

The API's event streams (`GET /api/exports/{id}/events`) follow exports through one LISTEN
connection per API process, fanned out in memory: the notification is the event, so no stream
queries the database after its first answer, and a change that another follows at once (a
small export's processing, then complete) is seen as it was.
The trigger fires only when `status` changes, in the transactions that change it: the workers'
(processing, complete, failed, a stalled build handed back), the retention sweep's (expired).
The main app's requests insert a pending export and never change a status, so no NOTIFY (and
its commit-serializing lock) enters its transactions.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

CHANNEL = "planner_export_status"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION planner_export_status_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', json_build_object(
                'id', NEW.id, 'user_id', NEW.user_id, 'format', NEW.format,
                'status', NEW.status, 'created_at', NEW.created_at,
                'completed_at', NEW.completed_at, 'expires_at', NEW.expires_at,
                'storage_key', NEW.storage_key, 'error', left(NEW.error, 1000))::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION planner_export_status_changed() FROM PUBLIC")
    op.execute(
        """
        CREATE TRIGGER planner_export_status_changed
        AFTER UPDATE OF status ON export_jobs
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION planner_export_status_changed()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER planner_export_status_changed ON export_jobs")
    op.execute("DROP FUNCTION planner_export_status_changed()")
