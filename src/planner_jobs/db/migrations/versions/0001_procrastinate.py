"""procrastinate's schema (tables, functions, triggers of the job queue) at version 3.10.0.

The SQL is a copy of the `schema.sql` shipped with procrastinate 3.10.0, kept here so that this
revision means the same thing forever. Upgrading procrastinate past 3.10 adds a revision that
runs the SQL migrations procrastinate ships for the versions in between.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = Path(__file__).parent.parent / "procrastinate-3.10.0-schema.sql"


def upgrade() -> None:
    # Many statements and `%` in PL/pgSQL bodies: run as one simple query on the raw connection.
    psycopg_connection = op.get_bind().connection.driver_connection
    assert psycopg_connection is not None
    psycopg_connection.execute(SCHEMA.read_text(encoding="utf-8"))


def downgrade() -> None:
    raise NotImplementedError("procrastinate's schema is not removed by a downgrade")
