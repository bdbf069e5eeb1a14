"""An export request's format, status and source take their rules from domains (as migration
0026 did for `users` and `notifications`).

The three CHECK constraints of `export_jobs` were read from their catalog text and planned again
by every INSERT and UPDATE of the table: 106,000 instructions of each `planner_request_export()`
call, 14 % of a transaction that inserts a user and requests an export for them (callgrind,
PostgreSQL 18, 2,000 such transactions), and the same again in each worker's change of a
status. As domains (`planner_export_format`, `planner_export_status`, `planner_export_source`)
the same rules cost a few thousand.

No table is rewritten; the partial indexes whose predicate reads `status` or `source` are
rebuilt, and the trigger whose condition reads `status` is dropped and made again around the
change (PostgreSQL refuses to change the type of a column a trigger's condition reads).
`export_schedules` keeps its CHECKs: the main app writes a schedule when a user changes it,
not on every request.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# Rules of one value as migration 0026 moves them (its `Rule`).
_RULES = (
    (
        "format",
        "text",
        "planner_export_format",
        "VALUE IN ('json', 'csv', 'markdown')",
        ("ck_export_jobs_format", "format IN ('json', 'csv', 'markdown')"),
    ),
    (
        "status",
        "text",
        "planner_export_status",
        "VALUE IN ('pending', 'processing', 'complete', 'failed', 'expired')",
        (
            "ck_export_jobs_status",
            "status IN ('pending', 'processing', 'complete', 'failed', 'expired')",
        ),
    ),
    (
        "source",
        "text",
        "planner_export_source",
        "VALUE IN ('request', 'schedule')",
        ("ck_export_jobs_source", "source IN ('request', 'schedule')"),
    ),
)


def _around_the_status_trigger(change: Callable[[str, tuple[Any, ...]], None]) -> None:
    """`change` made to `export_jobs` with the trigger whose condition reads `status` dropped,
    and made again as it was (its definition read from the catalog)."""
    trigger = op.get_bind().scalar(
        sa.text(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgrelid = 'export_jobs'::regclass AND tgname = 'planner_export_status_changed'"
        )
    )
    op.execute("DROP TRIGGER planner_export_status_changed ON export_jobs")
    change("export_jobs", _RULES)
    op.execute(trigger)


def upgrade() -> None:
    _around_the_status_trigger(earlier_revision("0026_rules_of_a_value_in_its_type.py").to_domains)


def downgrade() -> None:
    _around_the_status_trigger(earlier_revision("0026_rules_of_a_value_in_its_type.py").to_checks)
