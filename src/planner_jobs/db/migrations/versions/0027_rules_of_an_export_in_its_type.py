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

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# column, the domain, the domain's rule, the table's CHECK it replaces
_RULES = (
    (
        "format",
        "planner_export_format",
        "VALUE IN ('json', 'csv', 'markdown')",
        ("ck_export_jobs_format", "format IN ('json', 'csv', 'markdown')"),
    ),
    (
        "status",
        "planner_export_status",
        "VALUE IN ('pending', 'processing', 'complete', 'failed', 'expired')",
        (
            "ck_export_jobs_status",
            "status IN ('pending', 'processing', 'complete', 'failed', 'expired')",
        ),
    ),
    (
        "source",
        "planner_export_source",
        "VALUE IN ('request', 'schedule')",
        ("ck_export_jobs_source", "source IN ('request', 'schedule')"),
    ),
)

_TRIGGER = """
    CREATE TRIGGER planner_export_status_changed
    AFTER UPDATE OF status ON export_jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION planner_export_status_changed()
"""


def upgrade() -> None:
    op.execute("DROP TRIGGER planner_export_status_changed ON export_jobs")
    for _, domain, _, _ in _RULES:
        op.execute(f"CREATE DOMAIN {domain} AS text")
    op.execute(
        "ALTER TABLE export_jobs "
        + ", ".join(
            f"ALTER COLUMN {column} TYPE {domain}, DROP CONSTRAINT {check}"
            for column, domain, _, (check, _) in _RULES
        )
    )
    for _, domain, rule, _ in _RULES:
        op.execute(f"ALTER DOMAIN {domain} ADD CONSTRAINT {domain}_check CHECK ({rule})")
    op.execute(_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER planner_export_status_changed ON export_jobs")
    op.execute(
        "ALTER TABLE export_jobs "
        + ", ".join(
            f"ALTER COLUMN {column} TYPE text, ADD CONSTRAINT {check} CHECK ({expression})"
            for column, _, _, (check, expression) in _RULES
        )
    )
    for _, domain, _, _ in _RULES:
        op.execute(f"DROP DOMAIN {domain}")
    op.execute(_TRIGGER)
