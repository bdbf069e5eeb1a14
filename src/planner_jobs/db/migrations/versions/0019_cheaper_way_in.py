"""What a caller's `planner_notify()` costs: nothing planned again per call, no speculative insert.

Measured with `bench/commit_cost.py` (pgbench, 64 clients): a short transaction calling
`planner_notify()` ran at 0.76x the rate of the same transaction with a plain INSERT. Two costs
of the call were not the rules' own work:

- `planner_notify()` was a SQL function, which PostgreSQL cannot inline (it is SECURITY
  DEFINER, with its own search_path): the body of such a function is parsed, analyzed and
  planned again in every statement that calls it. As PL/pgSQL, its one statement is planned
  once per session.
- Without a deduplication key, the insert still went through ON CONFLICT: a speculative insert,
  which takes a speculative-insertion lock in the lock manager, inserts the tuple, its index
  entries, then confirms it with one more WAL record. Without a key there is nothing to
  conflict with: a plain INSERT.

And the notification table's index of `created_at`, read only by the nightly prune, becomes a
BRIN index: rows arrive in time order, so a summary per 128 pages serves the prune's range, and
an insert no longer adds an entry to a B-tree whose last page every caller writes to.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def functions(schema: str) -> list[str]:
    """The definitions of this revision, for the schema (an identifier, quoted) they live in."""
    return [
        f"""
        CREATE OR REPLACE FUNCTION planner_notify(
            user_id uuid,
            payload jsonb,
            urgency text DEFAULT 'normal',
            topic text DEFAULT NULL,
            ttl integer DEFAULT NULL,
            dedupe_key text DEFAULT NULL
        ) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
        BEGIN
            RETURN {schema}.planner_enqueue_notification($1, $2, $3, $4, $5, $6, 'sql');
        END $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION planner_enqueue_notification(
            p_user_id uuid, p_payload jsonb, p_urgency text, p_topic text, p_ttl integer,
            p_dedupe_key text, p_source text
        ) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            problem text;
            body text;
            found bigint;
        BEGIN
            SELECT checked.problem, checked.body INTO problem, body
              FROM {schema}.planner_notification_check(
                       p_user_id, p_payload, p_urgency, p_topic, p_ttl, p_dedupe_key) AS checked;
            IF problem IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = problem;
            END IF;
            -- No NOTIFY: the workers poll the index of what waits (ix_notifications_undrained).
            IF p_dedupe_key IS NULL THEN
                INSERT INTO {schema}.notifications (user_id, body, urgency, topic, ttl, source)
                VALUES (p_user_id, body, coalesce(p_urgency, 'normal'), p_topic, p_ttl, p_source)
                RETURNING id INTO found;
                RETURN found;
            END IF;
            LOOP
                -- The key's holder, when it is under 24 hours old, counts one duplicate and is
                -- the answer; a transaction raising the same key waits on this row until ours
                -- ends.
                INSERT INTO {schema}.notifications AS held
                       (user_id, body, urgency, topic, ttl, dedupe_key, source)
                VALUES (p_user_id, body, coalesce(p_urgency, 'normal'), p_topic, p_ttl,
                        p_dedupe_key, p_source)
                ON CONFLICT (user_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO UPDATE
                   SET duplicates = held.duplicates + 1
                 WHERE held.created_at > now() - interval '24 hours'
                RETURNING id INTO found;
                IF found IS NOT NULL THEN
                    RETURN found;
                END IF;
                -- The holder is older than 24 hours (and locked by the ON CONFLICT): it gives
                -- the key up, and the insert is tried again.
                UPDATE {schema}.notifications SET dedupe_key = NULL
                 WHERE user_id = p_user_id AND dedupe_key = p_dedupe_key;
            END LOOP;
        END $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
    ]


def _revision(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"planner_revision_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    schema = _revision("0009_safe_way_in.py").schema_of_this_database()
    for definition in functions(schema):
        op.execute(definition)
    op.drop_index("ix_notifications_created_at", table_name="notifications")
    op.create_index(
        "ix_notifications_created_at", "notifications", ["created_at"], postgresql_using="brin"
    )


def downgrade() -> None:
    schema = _revision("0009_safe_way_in.py").schema_of_this_database()
    for definition in _revision("0009_safe_way_in.py").functions(schema):
        if "FUNCTION planner_notify(" in definition:
            op.execute(definition)
    op.execute(_revision("0011_dedupe_by_unique_key.py").enqueue_notification(schema))
    op.drop_index("ix_notifications_created_at", table_name="notifications")
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])
