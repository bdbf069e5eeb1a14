"""What a caller's `planner_notify()` costs: no row lock on the user, nothing planned per call.

Measured with `bench/commit_cost.py` (pgbench, 64 clients, a short transaction that updates a
user): with `planner_notify()` it ran at 0.70x the rate of the same transaction with a plain
INSERT into a table shaped like `notifications`. Taken apart on the same server (one run, 3
rounds of 8 s): a plain INSERT into `notifications` itself ran at 0.79x, and at 0.94x without
its foreign key to `users`; the function's layers took the rest.

- **No foreign key from `notifications` to `users`.** Its check locks the user's row (FOR KEY
  SHARE) in every caller's transaction: a heap write and a WAL record per notification, and a
  MultiXact when two transactions raise one for the same user at once. The rules already ask
  whether the user exists (`planner_notification_check()`); a user's deletion (or a TRUNCATE of
  `users`) takes their notifications, and so their deliveries, with it, by a statement trigger,
  as the cascade did. What the lock guarded against: a notification committed by a transaction
  that checked the user just before a concurrent deletion committed. Such a row has no user and
  no subscription: the drain makes no delivery of it, and the prune forgets it with the others.
- **The check is called as an expression**, not as a row source: PL/pgSQL evaluates it without
  starting an executor for it (12 us of 60 per call, measured in a loop).
- **`planner_notify()` is PL/pgSQL**: a SQL function that cannot be inlined (it is SECURITY
  DEFINER, with its own search_path) has its body parsed and planned again by every statement
  that calls it on PostgreSQL before 18; PL/pgSQL plans it once per session.
- **Without a deduplication key, a plain INSERT**: ON CONFLICT made every insert speculative (a
  speculative-insertion lock, then one more WAL record to confirm the tuple).
- **A BRIN index of `created_at`**, which only the nightly prune reads: rows arrive in time order,
  so a summary per block range serves its range, and an insert adds no B-tree entry.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

from planner_jobs.db.migrate import earlier_revision

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
            checked record;
            body text;
            found bigint;
        BEGIN
            checked := {schema}.planner_notification_check(
                p_user_id, p_payload, p_urgency, p_topic, p_ttl, p_dedupe_key);
            IF checked.problem IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = checked.problem;
            END IF;
            body := checked.body;
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
        # The foreign key's cascade, as statement triggers: a deletion or a TRUNCATE of users
        # takes their notifications (and so their deliveries). With the owner's rights, as a
        # foreign key's cascade runs: the main app's role deleting a user needs no right on them.
        f"""
        CREATE FUNCTION planner_forget_notifications() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                -- Not TRUNCATE: the deliveries it would cascade to are being truncated by the
                -- statement that fired this (through the subscriptions).
                DELETE FROM {schema}.notifications;
            ELSE
                DELETE FROM {schema}.notifications
                 WHERE user_id IN (SELECT gone.id FROM gone);
            END IF;
            RETURN NULL;
        END $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
        """
        CREATE TRIGGER planner_forget_notifications AFTER DELETE ON users
        REFERENCING OLD TABLE AS gone
        FOR EACH STATEMENT EXECUTE FUNCTION planner_forget_notifications()
        """,
        """
        CREATE TRIGGER planner_forget_notifications_truncated AFTER TRUNCATE ON users
        FOR EACH STATEMENT EXECUTE FUNCTION planner_forget_notifications()
        """,
    ]


def upgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.drop_constraint(op.f("fk_notifications_user_id_users"), "notifications", type_="foreignkey")
    for definition in functions(schema):
        op.execute(definition)
    op.execute("REVOKE ALL ON FUNCTION planner_forget_notifications() FROM PUBLIC")
    op.drop_index("ix_notifications_created_at", table_name="notifications")
    op.create_index(
        "ix_notifications_created_at", "notifications", ["created_at"], postgresql_using="brin"
    )


def downgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute("DROP TRIGGER planner_forget_notifications_truncated ON users")
    op.execute("DROP TRIGGER planner_forget_notifications ON users")
    op.execute("DROP FUNCTION planner_forget_notifications()")
    op.execute(
        "DELETE FROM notifications n WHERE NOT EXISTS (SELECT FROM users u WHERE u.id = n.user_id)"
    )
    op.create_foreign_key(
        op.f("fk_notifications_user_id_users"),
        "notifications",
        "users",
        ["user_id"],
        ["id"],
        ondelete="CASCADE",
    )
    for definition in earlier_revision("0009_safe_way_in.py").functions(schema):
        if "FUNCTION planner_notify(" in definition:
            op.execute(definition)
    op.execute(earlier_revision("0011_dedupe_by_unique_key.py").enqueue_notification(schema))
    op.drop_index("ix_notifications_created_at", table_name="notifications")
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])
