"""The main app's way in: the notification outbox and the stable SQL functions.

- `notifications`: every notification raised, whatever the way in (SQL, HTTP, a job, the CLI,
  reminders, exports), with its compact JSON text (what the browser receives), urgency, topic,
  TTL and deduplication key; `drained_at` is set when the workers turn it into deliveries.
- `push_deliveries` now belong to a notification (bigint id, cascade) instead of copying its
  payload per subscription. Deliveries of notifications queued before this revision are kept:
  their notifications are created from them, and those still waiting are drained again.
- `planner_notify()` and `planner_request_export()`: the functions other programs call in their
  own transaction, kept stable (a later revision may add optional parameters, never change or
  drop these). They run as their owner (SECURITY DEFINER): the caller needs EXECUTE only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MAX_PLAINTEXT = 3993  # bytes of JSON text one aes128gcm record of 4096 bytes holds
MAX_TTL = 28 * 24 * 3600

FUNCTIONS = [
    # The payload's JSON text as the browser receives it: PostgreSQL's rendering of the jsonb
    # (its key order, its numbers), without the spaces it puts after ':' and ','.
    """
    CREATE FUNCTION planner_json_compact(document jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    BEGIN
        CASE jsonb_typeof(document)
        WHEN 'object' THEN
            RETURN '{' || coalesce((
                SELECT string_agg(
                    to_jsonb(item.key)::text || ':' || planner_json_compact(item.value), ','
                    ORDER BY item.position)
                FROM jsonb_each(document) WITH ORDINALITY AS item(key, value, position)
            ), '') || '}';
        WHEN 'array' THEN
            RETURN '[' || coalesce((
                SELECT string_agg(planner_json_compact(item.value), ',' ORDER BY item.position)
                FROM jsonb_array_elements(document) WITH ORDINALITY AS item(value, position)
            ), '') || ']';
        ELSE
            RETURN document::text;
        END CASE;
    END $$
    """,
    # Why a notification cannot be queued ("argument: reason"), or NULL: the one place these
    # rules live, used by planner_notify() and by every way in of planner-jobs itself.
    f"""
    CREATE FUNCTION planner_notification_problem(
        user_id uuid, payload jsonb, urgency text, topic text, ttl integer, dedupe_key text
    ) RETURNS text
    LANGUAGE plpgsql STABLE AS $$
    DECLARE
        size integer;
    BEGIN
        IF user_id IS NULL THEN
            RETURN 'user_id: is required';
        END IF;
        IF NOT EXISTS (SELECT FROM users WHERE users.id = user_id) THEN
            RETURN format('user_id: there is no user %s', user_id);
        END IF;
        IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
            RETURN 'payload: must be a JSON object';
        END IF;
        size := octet_length(planner_json_compact(payload));
        IF size > {MAX_PLAINTEXT} THEN
            RETURN format(
                'payload: is %s bytes of JSON; at most {MAX_PLAINTEXT} fit in a push message',
                size);
        END IF;
        IF urgency IS NOT NULL AND urgency NOT IN ('very-low', 'low', 'normal', 'high') THEN
            RETURN format('urgency: must be one of very-low, low, normal, high, not %s',
                          quote_literal(urgency));
        END IF;
        IF topic IS NOT NULL AND topic !~ '^[A-Za-z0-9_-]{{1,32}}$' THEN
            RETURN format(
                'topic: must be 1 to 32 characters of A-Z, a-z, 0-9, ''-'' and ''_'', not %s',
                quote_literal(topic));
        END IF;
        IF ttl IS NOT NULL AND (ttl < 0 OR ttl > {MAX_TTL}) THEN
            RETURN format('ttl: must be 0 to {MAX_TTL} seconds, not %s', ttl);
        END IF;
        IF dedupe_key IS NOT NULL AND char_length(dedupe_key) NOT BETWEEN 1 AND 200 THEN
            RETURN 'dedupe_key: must be 1 to 200 characters';
        END IF;
        RETURN NULL;
    END $$
    """,
    # Queue one notification (or find the one with the same deduplication key of the last
    # 24 hours), and wake the workers once the caller's transaction commits.
    """
    CREATE FUNCTION planner_enqueue_notification(
        p_user_id uuid, p_payload jsonb, p_urgency text, p_topic text, p_ttl integer,
        p_dedupe_key text, p_source text
    ) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE
        problem text;
        found bigint;
    BEGIN
        problem := planner_notification_problem(
            p_user_id, p_payload, p_urgency, p_topic, p_ttl, p_dedupe_key);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = problem;
        END IF;
        IF p_dedupe_key IS NOT NULL THEN
            -- Two transactions raising the same key at once: the second waits for the first.
            PERFORM pg_advisory_xact_lock(
                hashtextextended(p_user_id::text || ' ' || p_dedupe_key, 8030));
            SELECT id INTO found FROM notifications
             WHERE user_id = p_user_id AND dedupe_key = p_dedupe_key
               AND created_at > now() - interval '24 hours'
             ORDER BY id DESC LIMIT 1;
            IF found IS NOT NULL THEN
                UPDATE notifications SET duplicates = duplicates + 1 WHERE id = found;
                RETURN found;
            END IF;
        END IF;
        INSERT INTO notifications (user_id, body, urgency, topic, ttl, dedupe_key, source)
        VALUES (p_user_id, planner_json_compact(p_payload), coalesce(p_urgency, 'normal'),
                p_topic, p_ttl, p_dedupe_key, p_source)
        RETURNING id INTO found;
        PERFORM pg_notify('planner_notifications', '');
        RETURN found;
    END $$
    """,
    """
    CREATE FUNCTION planner_notify(
        user_id uuid,
        payload jsonb,
        urgency text DEFAULT 'normal',
        topic text DEFAULT NULL,
        ttl integer DEFAULT NULL,
        dedupe_key text DEFAULT NULL
    ) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        SELECT planner_enqueue_notification($1, $2, $3, $4, $5, $6, 'sql')
    $$
    """,
    # The rules of POST /api/exports, which calls this function too.
    """
    CREATE FUNCTION planner_request_export(user_id uuid, format text) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DECLARE
        active export_jobs%ROWTYPE;
        recent timestamptz[];
        frees_at timestamptz;
        created uuid;
    BEGIN
        IF format IS NULL OR format NOT IN ('json', 'csv', 'markdown') THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format(
                'format: must be json, csv or markdown, not %s', quote_nullable(format));
        END IF;
        IF user_id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'user_id: is required';
        END IF;
        -- The user's requests are decided one at a time.
        PERFORM FROM users WHERE users.id = user_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = pg_catalog.format('user_id: there is no user %s', user_id);
        END IF;
        SELECT * INTO active FROM export_jobs AS job
         WHERE job.user_id = planner_request_export.user_id
           AND job.status IN ('pending', 'processing')
         LIMIT 1;
        IF FOUND THEN
            IF active.format = planner_request_export.format THEN
                RETURN active.id;
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'PJ409',
                MESSAGE = pg_catalog.format(
                    'an export in %s is already %s; one export runs at a time',
                    active.format, active.status),
                DETAIL = pg_catalog.format('the active export is %s', active.id);
        END IF;
        recent := ARRAY(
            SELECT job.created_at FROM export_jobs AS job
             WHERE job.user_id = planner_request_export.user_id
               AND job.created_at > now() - interval '24 hours'
             ORDER BY job.created_at);
        IF cardinality(recent) >= 5 THEN
            -- The oldest request of the window that must age out for one more to fit.
            frees_at := recent[cardinality(recent) - 5 + 1] + interval '24 hours';
            RAISE EXCEPTION USING ERRCODE = 'PJ429',
                MESSAGE = 'at most 5 exports in 24 hours',
                DETAIL = greatest(1, ceil(extract(epoch FROM frees_at - now())))::bigint::text;
        END IF;
        INSERT INTO export_jobs (user_id, format, status, created_at)
        VALUES (planner_request_export.user_id, planner_request_export.format, 'pending', now())
        RETURNING id INTO created;
        -- Its build job, in this transaction: procrastinate's defer function (3.10; a revision
        -- that upgrades procrastinate updates this line).
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'exports', 'exports.build', 0, NULL, 'export:' || created,
            jsonb_build_object('export_id', created::text), NULL
        )::procrastinate_job_to_defer_v1]);
        RETURN created;
    END $$
    """,
]


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("urgency", sa.Text(), server_default=sa.text("'normal'"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("ttl", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), server_default=sa.text("'sql'"), nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("drained_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "urgency IN ('very-low', 'low', 'normal', 'high')",
            name=op.f("ck_notifications_urgency"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(op.f("ix_notifications_user_id"), "notifications", ["user_id"])
    op.create_index(op.f("ix_notifications_created_at"), "notifications", ["created_at"])
    op.create_index(
        "ix_notifications_undrained",
        "notifications",
        ["id"],
        postgresql_where=sa.text("drained_at IS NULL"),
    )
    op.create_index(
        "ix_notifications_dedupe",
        "notifications",
        ["user_id", "dedupe_key", "created_at"],
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )
    for function in FUNCTIONS:
        op.execute(function)
    _deliveries_belong_to_notifications()


def _deliveries_belong_to_notifications() -> None:
    """Each delivery's notification becomes a row of `notifications` (the payload once, not per
    subscription); the ones still waiting are drained again, so nothing queued is lost."""
    op.add_column("push_deliveries", sa.Column("notification", sa.BigInteger(), nullable=True))
    op.execute(
        """
        CREATE TEMPORARY TABLE earlier_notifications ON COMMIT DROP AS
        SELECT DISTINCT ON (notification_id)
               notification_id, user_id, payload, urgency, topic, created_at,
               nextval(pg_get_serial_sequence('notifications', 'id')) AS id,
               bool_or(status = 'pending') OVER (PARTITION BY notification_id) AS waiting
          FROM push_deliveries
         ORDER BY notification_id, created_at
        """
    )
    op.execute(
        """
        INSERT INTO notifications
               (id, user_id, body, urgency, topic, source, created_at, drained_at)
        SELECT id, user_id, planner_json_compact(payload), urgency, topic, 'earlier',
               created_at, CASE WHEN waiting THEN NULL ELSE created_at END
          FROM earlier_notifications
        """
    )
    op.execute(
        """
        UPDATE push_deliveries SET notification = earlier.id
          FROM earlier_notifications AS earlier
         WHERE push_deliveries.notification_id = earlier.notification_id
        """
    )
    # Drained again, they get their waiting deliveries back (the delivered ones stay).
    op.execute("DELETE FROM push_deliveries WHERE status = 'pending'")
    # Their jobs named notifications by the old ids: the drain replaces them.
    op.execute(
        "DELETE FROM procrastinate_jobs"
        " WHERE task_name = 'notifications.deliver' AND status = 'todo'"
    )
    op.drop_constraint("pk_push_deliveries", "push_deliveries", type_="primary")
    op.drop_index(op.f("ix_push_deliveries_user_id"), table_name="push_deliveries")
    for column in ("notification_id", "user_id", "payload", "urgency", "topic"):
        op.drop_column("push_deliveries", column)
    op.alter_column(
        "push_deliveries", "notification", new_column_name="notification_id", nullable=False
    )
    op.create_primary_key(
        op.f("pk_push_deliveries"), "push_deliveries", ["notification_id", "subscription_id"]
    )
    op.create_foreign_key(
        op.f("fk_push_deliveries_notification_id_notifications"),
        "push_deliveries",
        "notifications",
        ["notification_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.add_column("push_deliveries", sa.Column("payload", postgresql.JSONB(), nullable=True))
    op.add_column("push_deliveries", sa.Column("urgency", sa.Text(), nullable=True))
    op.add_column("push_deliveries", sa.Column("topic", sa.Text(), nullable=True))
    op.add_column("push_deliveries", sa.Column("user_id", sa.Uuid(), nullable=True))
    op.add_column("push_deliveries", sa.Column("legacy_id", sa.Uuid(), nullable=True))
    op.execute(
        """
        UPDATE push_deliveries SET payload = n.body::jsonb, urgency = n.urgency,
               topic = n.topic, user_id = n.user_id,
               legacy_id = md5('notification:' || n.id)::uuid
          FROM notifications AS n WHERE n.id = push_deliveries.notification_id
        """
    )
    op.drop_constraint(
        op.f("fk_push_deliveries_notification_id_notifications"),
        "push_deliveries",
        type_="foreignkey",
    )
    op.drop_constraint(op.f("pk_push_deliveries"), "push_deliveries", type_="primary")
    op.drop_column("push_deliveries", "notification_id")
    op.alter_column(
        "push_deliveries", "legacy_id", new_column_name="notification_id", nullable=False
    )
    for column in ("payload", "user_id"):
        op.alter_column("push_deliveries", column, nullable=False)
    op.execute("UPDATE push_deliveries SET urgency = 'normal' WHERE urgency IS NULL")
    op.alter_column(
        "push_deliveries", "urgency", nullable=False, server_default=sa.text("'normal'")
    )
    op.create_primary_key(
        op.f("pk_push_deliveries"), "push_deliveries", ["notification_id", "subscription_id"]
    )
    op.create_foreign_key(
        op.f("fk_push_deliveries_user_id_users"),
        "push_deliveries",
        "users",
        ["user_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(op.f("ix_push_deliveries_user_id"), "push_deliveries", ["user_id"])
    for name in (
        "planner_request_export(uuid, text)",
        "planner_notify(uuid, jsonb, text, text, integer, text)",
        "planner_enqueue_notification(uuid, jsonb, text, text, integer, text, text)",
        "planner_notification_problem(uuid, jsonb, text, text, integer, text)",
        "planner_json_compact(jsonb)",
    ):
        op.execute(f"DROP FUNCTION {name}")
    op.drop_table("notifications")
