"""`performance_history` is partitioned by month.

Measured with `bench/history.py` (100,000 users): after a year of history the rollover closed
0.72-0.77x the users per second it closed on an empty history, and wrote 11.4 KB of WAL per
user-day instead of 4.1, 7.4 KB of it full-page images of the primary key's leaf pages. The key
`(user_id, day)` keeps each user's year together, about a leaf page of it, so every user-day a
sweep closes writes into a different leaf: after each checkpoint, a page image of 8 KB for one
entry of 30 bytes, and a page to read and to write back. Within one month's partition a user has
at most 31 entries, and the leaves a sweep writes hold the entries of 8 to 250 users.

- The table keeps its name, columns, constraints and key (unique `(user_id, day)`, the key of
  each partition): readers see no difference. Partitions are named `performance_history_YYYY_MM`.
- The rows already there stay where they are: the old table becomes the partition of every date
  before the first month after its newest row (`performance_history_before`), attached after a
  CHECK constraint proved its range (a scan that takes no lock writers wait on), so the
  migration copies nothing.
- `planner_history_months(days date[])` makes the partitions of the months of `days` that have
  none (`planner_history_missing_months(days)` names them). A partition is made as a plain
  table and then attached: SHARE UPDATE EXCLUSIVE on `performance_history` (its readers and
  writers go on; CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE), but also, for the
  foreign key the partition gets, SHARE ROW EXCLUSIVE on `users`, which waits for every
  transaction writing a user and holds up those that come after. So a partition is never made
  inside a transaction that writes: each rollover sweep makes those of the dates around its
  `now` first, in a transaction of its own that gives up after 100 ms and tries again
  (`db.rollover.make_history_months`), about a day before a month begins; a batch that meets
  an older month without one (a long backfill) stops, and the sweep makes it and runs the
  batch again. (Measured the other way, making it inside the batch that needed it: the other
  batches' locks on `users` and the maker's advisory lock waited on each other until their
  lock timeouts, and the first night of a month ran at a fifth of the speed.)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def months_functions(schema: str, before: dt.date | None) -> list[str]:
    """`planner_history_missing_months()` and `planner_history_months()`, for the schema (an
    identifier, quoted) they live in and the first date the partition of the rows from before
    partitioning does not hold."""
    after_before = f"month >= DATE '{before.isoformat()}' AND" if before else ""
    return [
        f"""
        CREATE OR REPLACE FUNCTION planner_history_missing_months(days date[]) RETURNS date[]
        LANGUAGE sql STABLE SET search_path = {schema}, pg_temp AS $$
            SELECT coalesce(array_agg(month ORDER BY month), '{{}}')
              FROM (SELECT DISTINCT date_trunc('month', day)::date AS month
                      FROM unnest(days) AS day WHERE day IS NOT NULL) AS months
             WHERE {after_before} to_regclass(format('{schema}.%I',
                       'performance_history_' || to_char(month, 'YYYY_MM'))) IS NULL
        $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
        f"""
        CREATE OR REPLACE FUNCTION planner_history_months(days date[]) RETURNS void
        LANGUAGE plpgsql SET search_path = {schema}, pg_temp AS $$
        DECLARE
            month date;
            name text;
        BEGIN
            IF cardinality({schema}.planner_history_missing_months(days)) = 0 THEN
                RETURN;
            END IF;
            -- One maker at a time (ATTACH takes this lock too); taking it also brings the
            -- catalogue up to date: a partition another maker just made is not missing.
            LOCK TABLE {schema}.performance_history IN SHARE UPDATE EXCLUSIVE MODE;
            FOREACH month IN ARRAY {schema}.planner_history_missing_months(days) LOOP
                name := 'performance_history_' || to_char(month, 'YYYY_MM');
                EXECUTE format(
                    'CREATE TABLE {schema}.%I (LIKE {schema}.performance_history'
                    ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
                EXECUTE format(
                    'ALTER TABLE {schema}.performance_history ATTACH PARTITION {schema}.%I'
                    ' FOR VALUES FROM (%L) TO (%L)',
                    name, month, (month + interval '1 month')::date);
            END LOOP;
        END $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
    ]


def upgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    connection = op.get_bind()
    op.execute("ALTER TABLE performance_history RENAME TO performance_history_before")
    op.execute("ALTER INDEX pk_performance_history RENAME TO pk_performance_history_before")
    op.execute(
        "CREATE TABLE performance_history (LIKE performance_history_before"
        " INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (day)"
    )
    _key_and_grants(connection, "performance_history_before")
    before = connection.scalar(
        sa.text(
            "SELECT (date_trunc('month', max(day)) + interval '1 month')::date"
            " FROM performance_history_before"
        )
    )
    if before is None:
        op.execute("DROP TABLE performance_history_before")
    else:
        # The CHECK proves the range, so ATTACH does not scan the rows under its lock.
        op.execute(
            "ALTER TABLE performance_history_before ADD CONSTRAINT before_partitioning"
            f" CHECK (day < DATE '{before.isoformat()}') NOT VALID"
        )
        op.execute("ALTER TABLE performance_history_before VALIDATE CONSTRAINT before_partitioning")
        op.execute(
            "ALTER TABLE performance_history ATTACH PARTITION performance_history_before"
            f" FOR VALUES FROM (MINVALUE) TO ('{before.isoformat()}')"
        )
        op.execute("ALTER TABLE performance_history_before DROP CONSTRAINT before_partitioning")
    for definition in months_functions(schema, before):
        op.execute(definition)
    op.execute("REVOKE ALL ON FUNCTION planner_history_months(date[]) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION planner_history_missing_months(date[]) FROM PUBLIC")


def _key_and_grants(connection: sa.Connection, source: str) -> None:
    """The new `performance_history` gets its key, its foreign key, and the rights others hold
    on `source`, the table it replaces (the main app reads the history)."""
    op.execute(
        "ALTER TABLE performance_history"
        " ADD CONSTRAINT pk_performance_history PRIMARY KEY (user_id, day)"
    )
    op.create_foreign_key(
        op.f("fk_performance_history_user_id_users"),
        "performance_history",
        "users",
        ["user_id"],
        ["id"],
        ondelete="CASCADE",
    )
    _copy_grants(connection, source, "performance_history")


def _copy_grants(connection: sa.Connection, source: str, target: str) -> None:
    """The rights others hold on `source`, on `target`."""
    grants = connection.execute(
        sa.text(
            "SELECT acl.privilege_type, coalesce(quote_ident(r.rolname), 'PUBLIC')"
            " FROM pg_class c, aclexplode(c.relacl) AS acl"
            " LEFT JOIN pg_roles r ON r.oid = acl.grantee"
            " WHERE c.oid = to_regclass(:source) AND acl.grantee <> c.relowner"
        ),
        {"source": source},
    ).all()
    for privilege, grantee in grants:
        op.execute(f"GRANT {privilege} ON {target} TO {grantee}")


def downgrade() -> None:
    connection = op.get_bind()
    op.execute("DROP FUNCTION planner_history_months(date[])")
    op.execute("DROP FUNCTION planner_history_missing_months(date[])")
    op.execute("ALTER TABLE performance_history RENAME TO performance_history_by_month")
    op.execute("ALTER INDEX pk_performance_history RENAME TO pk_performance_history_by_month")
    op.execute(
        "CREATE TABLE performance_history (LIKE performance_history_by_month"
        " INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    op.execute("INSERT INTO performance_history SELECT * FROM performance_history_by_month")
    _key_and_grants(connection, "performance_history_by_month")
    op.execute("DROP TABLE performance_history_by_month")
