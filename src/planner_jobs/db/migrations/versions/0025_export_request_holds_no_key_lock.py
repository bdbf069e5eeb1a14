"""`planner_request_export()` decides a user's requests one at a time without holding up the
main app's inserts about that user.

It took the user's row `FOR UPDATE` for the rest of the caller's transaction. That lock also
conflicts with the `FOR KEY SHARE` lock every foreign-key check takes: while a transaction that
had requested an export was open, the main app's inserts of a task, a plan or a routine of the
same user (and anything else whose foreign key names the user) waited for its commit. Now it takes
`FOR NO KEY UPDATE`, the lock an UPDATE of the row's other columns takes: two requests of one
user still wait for each other (the lock conflicts with itself), and an update of the user's row
waits as before, but the foreign-key checks pass
(`tests/integration/test_way_in.py`). The function is otherwise revision 0020's.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_BEFORE = "WHERE users.id = user_id FOR UPDATE;"
_AFTER = "WHERE users.id = user_id FOR NO KEY UPDATE;"


def _request_export(schema: str) -> str:
    """Revision 0020's `planner_request_export()`."""
    text: str = earlier_revision("0020_scheduled_exports.py")._request_export(
        schema, requests_only=True
    )
    assert text.count(_BEFORE) == 1
    return text


def upgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute(_request_export(schema).replace(_BEFORE, _AFTER))


def downgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute(_request_export(schema))
