"""`planner_notify()` raises an ordinary notification in one statement of its own.

Measured with `bench/commit_cost.py` (pgbench, 64 clients on 2 cores, a short transaction that
updates a user): with `planner_notify()` it ran at 0.76x the rate of the same transaction with a
plain INSERT into a table shaped like `notifications` (the server's and pgbench's CPU per
transaction: +120 to +160 us, against +15 to +35 us for the same INSERT into `notifications`
itself). Most of the difference was the layers: `planner_notify()` called
`planner_enqueue_notification()`, which called `planner_notification_check()`, three PL/pgSQL
functions with a statement each, run afresh in every caller's transaction (measured with the
checks written as one statement, and without any: each layer costs the caller more than the
rules it runs).

Now a notification without a deduplication key whose every argument is plainly within the rules
is written by one INSERT ... SELECT in `planner_notify()` itself, its WHERE a stricter
restatement of the rules: the user exists, the payload is an object nested at most 32 levels,
whose PostgreSQL rendering alone (spaces included) fits a push message, and which is not a
declarative Web Push message; urgency, topic and ttl within RFC 8030's values. Anything else,
a deduplication key or an argument the WHERE does not vouch for, takes the path it took before
(`planner_enqueue_notification()`), which stays the one place of the rules and of their refusals:
a call the fast path declines is refused, or accepted, exactly as before.
`tests/integration/test_way_in.py` checks, over the edge cases of every rule, that the two paths
store the same row or refuse.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def notify_function(schema: str) -> str:
    """`planner_notify()` of this revision, for the schema (an identifier, quoted) it lives in."""
    rules = earlier_revision("0010_commit_without_notify.py")
    too_deep = f'strict $.**{{{rules.MAX_DEPTH}}} ? (@.type() == "object" || @.type() == "array")'
    return f"""
        CREATE OR REPLACE FUNCTION planner_notify(
            user_id uuid,
            payload jsonb,
            urgency text DEFAULT 'normal',
            topic text DEFAULT NULL,
            ttl integer DEFAULT NULL,
            dedupe_key text DEFAULT NULL
        ) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
        DECLARE
            found bigint;
        BEGIN
            IF $6 IS NULL THEN
                -- Within the rules beyond doubt (planner_notification_check() has them all).
                INSERT INTO {schema}.notifications (user_id, body, urgency, topic, ttl, source)
                SELECT $1, $2::text, coalesce($3, 'normal'), $4, $5, 'sql'
                 WHERE EXISTS (SELECT FROM {schema}.users WHERE users.id = $1)
                   AND jsonb_typeof($2) = 'object'
                   AND octet_length($2::text) <= {rules.MAX_PLAINTEXT}
                   AND $2 -> 'web_push' IS DISTINCT FROM '8030'::jsonb
                   AND ($3 IS NULL OR $3 IN ('very-low', 'low', 'normal', 'high'))
                   AND ($4 IS NULL OR $4 ~ '^[A-Za-z0-9_-]{{1,32}}$')
                   AND ($5 IS NULL OR $5 BETWEEN 0 AND {rules.MAX_TTL})
                   AND NOT jsonb_path_exists($2, '{too_deep}')
                RETURNING id INTO found;
                IF found IS NOT NULL THEN
                    RETURN found;
                END IF;
            END IF;
            RETURN {schema}.planner_enqueue_notification($1, $2, $3, $4, $5, $6, 'sql');
        END $$
        """  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)


def upgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute(notify_function(schema))


def downgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    for definition in earlier_revision("0019_cheaper_way_in.py").functions(schema):
        if "FUNCTION planner_notify(" in definition:
            op.execute(definition)
