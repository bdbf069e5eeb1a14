"""Exports: find the failed jobs whose attempts may have left a stored file.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FAILED_WITH_FILE = sa.text("status = 'failed' AND storage_key IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_export_jobs_failed_with_file",
        "export_jobs",
        ["id"],
        unique=False,
        postgresql_where=_FAILED_WITH_FILE,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_export_jobs_failed_with_file",
        table_name="export_jobs",
        postgresql_where=_FAILED_WITH_FILE,
    )
