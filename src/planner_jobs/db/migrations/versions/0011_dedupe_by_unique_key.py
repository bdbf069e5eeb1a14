"""A repeated deduplication key is found by a unique index, not by a lock and a lookup.

`planner_enqueue_notification()` took an advisory lock per (user, key) for the rest of the
caller's transaction, then looked the key up. Two faults, both measured:

- The locks live in the server's shared lock table (`max_locks_per_transaction` x connections,
  6,400 by default): a transaction that raised a few thousand keyed notifications (a rollover
  batch of freeze notices, one per user and closed day, or the main app raising them in bulk)
  failed with "out of shared memory" (25,000 in one transaction, PostgreSQL 15).
- The lookup's plan was cached by PL/pgSQL: planned while the table looked empty (after a
  prune and ANALYZE) it read the whole table on every call until the next ANALYZE, so a burst
  of keyed notifications cost quadratic time (5,000 calls: 2.0 s, the next 5,000: 3.4 s, the
  next: 7.4 s; the rollover's freeze notices ran at 376 us each).

Now the key's holder is the one row with that key in a unique partial index: the insert meets
it with ON CONFLICT, which counts the duplicate and returns the holder's id when the holder is
under 24 hours old. A holder that is older gives its key up (its `dedupe_key` is cleared) and
the new notification takes it. Two transactions raising the same key at once: the second waits
on the first's row, as it waited on its lock; no other lock is kept. Only the newest holder of
each key keeps it when this revision is applied (the older ones could no longer be found by the
24-hour lookup either).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def enqueue_notification(schema: str) -> str:
    return f"""
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
        LOOP
            -- The key's holder, when it is under 24 hours old, counts one duplicate and is
            -- the answer; a transaction raising the same key waits on this row until ours ends.
            -- No NOTIFY: the workers poll the index of what waits (ix_notifications_undrained).
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
            -- The holder is older than 24 hours (and locked by the ON CONFLICT): it gives the
            -- key up, and the insert is tried again.
            UPDATE {schema}.notifications SET dedupe_key = NULL
             WHERE user_id = p_user_id AND dedupe_key = p_dedupe_key;
        END LOOP;
    END $$
    """  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)


_KEYED = sa.text("dedupe_key IS NOT NULL")


def upgrade() -> None:
    op.execute(
        """
        UPDATE notifications AS older SET dedupe_key = NULL
         WHERE dedupe_key IS NOT NULL
           AND EXISTS (SELECT FROM notifications AS newer
                        WHERE newer.user_id = older.user_id
                          AND newer.dedupe_key = older.dedupe_key
                          AND newer.id > older.id)
        """
    )
    op.drop_index("ix_notifications_dedupe", table_name="notifications", postgresql_where=_KEYED)
    op.create_index(
        "ux_notifications_dedupe",
        "notifications",
        ["user_id", "dedupe_key"],
        unique=True,
        postgresql_where=_KEYED,
    )
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute(enqueue_notification(schema))


def downgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    for definition in earlier_revision("0010_commit_without_notify.py").notification_functions(
        schema
    ):
        if "FUNCTION planner_enqueue_notification(" in definition:
            op.execute(definition)
    op.drop_index("ux_notifications_dedupe", table_name="notifications", postgresql_where=_KEYED)
    op.create_index(
        "ix_notifications_dedupe",
        "notifications",
        ["user_id", "dedupe_key", "created_at"],
        postgresql_where=_KEYED,
    )
