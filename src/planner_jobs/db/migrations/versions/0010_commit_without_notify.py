"""The way in commits without a database-wide lock: no NOTIFY in the caller's transaction.

PostgreSQL serializes every transaction that sent a NOTIFY on one lock held through its commit:
the main app's transactions that raised a notification or an export ran one commit at a time
(0.25-0.5x the throughput of the same transaction with a plain INSERT, at 64 clients).

- `planner_enqueue_notification()` no longer NOTIFYs: the workers poll the outbox's partial
  index instead (one connection per worker process). It checks the rules once
  (`planner_notification_check()`, the one place of the rules, which
  `planner_notification_problem()` now reads) and stores PostgreSQL's rendering of the payload:
  the sender drops the spaces between its tokens (the browser receives the same compact text as
  before), and the regular expression that did it here (16 µs) runs only for a payload large
  enough to be refused. The caller's transaction pays for each microsecond, on a database busy
  with commits.
- `planner_request_export()` no longer queues the build job (procrastinate's insert trigger
  NOTIFYs twice per job): it writes the request; the workers take pending requests in and queue
  their build jobs in transactions of their own. `export_jobs.build_queued_at` records when,
  and the rows of earlier requests, whose jobs exist, are marked as taken in. Its quota check
  reads the user's five newest requests off the (user_id, created_at) index: the range "created
  in the last 24 hours" let a generic plan walk every user's requests of the day (measured: 250
  requests/s at 8 clients once a few thousand were made that day). And the index of export
  statuses leaves out the active ones (`ix_export_jobs_finished_status`): with statistics that
  saw no pending export, a generic plan looked up the user's active export through it, walking
  every pending export (a backlog while the workers are away); the unique index of active
  exports per user now serves that lookup alone, and the operators' counts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

MAX_PLAINTEXT = 3993  # bytes of JSON text one aes128gcm record of 4096 bytes holds
MAX_TTL = 28 * 24 * 3600
MAX_DEPTH = 32


def notification_functions(schema: str) -> list[str]:
    """The rules of a notification, checked once per call with its compact text computed once
    (`planner_notification_check`, the one place of the rules); the problem alone for the ways
    in that ask about a batch first; and the enqueueing, which no longer NOTIFYs."""
    return [
        f"""
        CREATE FUNCTION planner_notification_check(
            user_id uuid, payload jsonb, urgency text, topic text, ttl integer,
            dedupe_key text, OUT problem text, OUT body text
        )
        LANGUAGE plpgsql STABLE AS $$
        BEGIN
            IF user_id IS NULL THEN
                problem := 'user_id: is required';
                RETURN;
            END IF;
            IF NOT EXISTS (SELECT FROM {schema}.users WHERE users.id = user_id) THEN
                problem := format('user_id: there is no user %s', user_id);
                RETURN;
            END IF;
            IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
                problem := 'payload: must be a JSON object';
                RETURN;
            END IF;
            -- An object or array at level {MAX_DEPTH} (the payload is level 0 of the path) is
            -- the {MAX_DEPTH + 1}th nested one; the path looks no deeper than that.
            IF jsonb_path_exists(payload,
                'strict $.**{{{MAX_DEPTH}}} ? (@.type() == "object" || @.type() == "array")')
            THEN
                problem := 'payload: must not be nested deeper than {MAX_DEPTH} levels';
                RETURN;
            END IF;
            -- PostgreSQL's rendering, whose spaces the sender drops (what the browser gets);
            -- only one long enough to be refused is compacted here, to measure it exactly.
            body := payload::text;
            IF octet_length(body) > {MAX_PLAINTEXT}
               AND octet_length({schema}.planner_json_compact(payload)) > {MAX_PLAINTEXT} THEN
                problem := format(
                    'payload: is %s bytes of JSON; at most {MAX_PLAINTEXT} fit in a push message',
                    octet_length({schema}.planner_json_compact(payload)));
                RETURN;
            END IF;
            IF urgency IS NOT NULL AND urgency NOT IN ('very-low', 'low', 'normal', 'high') THEN
                problem := format('urgency: must be one of very-low, low, normal, high, not %s',
                                  quote_literal(urgency));
                RETURN;
            END IF;
            IF topic IS NOT NULL AND topic !~ '^[A-Za-z0-9_-]{{1,32}}$' THEN
                problem := format(
                    'topic: must be 1 to 32 characters of A-Z, a-z, 0-9, ''-'' and ''_'', not %s',
                    quote_literal(topic));
                RETURN;
            END IF;
            IF ttl IS NOT NULL AND (ttl < 0 OR ttl > {MAX_TTL}) THEN
                problem := format('ttl: must be 0 to {MAX_TTL} seconds, not %s', ttl);
                RETURN;
            END IF;
            IF dedupe_key IS NOT NULL AND char_length(dedupe_key) NOT BETWEEN 1 AND 200 THEN
                problem := 'dedupe_key: must be 1 to 200 characters';
                RETURN;
            END IF;
        END $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION planner_notification_problem(
            user_id uuid, payload jsonb, urgency text, topic text, ttl integer, dedupe_key text
        ) RETURNS text
        LANGUAGE sql STABLE AS $$
            SELECT problem FROM {schema}.planner_notification_check($1, $2, $3, $4, $5, $6)
        $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
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
            IF p_dedupe_key IS NOT NULL THEN
                -- Two transactions raising the same key at once: the second waits for the first.
                PERFORM pg_advisory_xact_lock(
                    hashtextextended(p_user_id::text || ' ' || p_dedupe_key, 8030));
                SELECT id INTO found FROM {schema}.notifications
                 WHERE user_id = p_user_id AND dedupe_key = p_dedupe_key
                   AND created_at > now() - interval '24 hours'
                 ORDER BY id DESC LIMIT 1;
                IF found IS NOT NULL THEN
                    UPDATE {schema}.notifications SET duplicates = duplicates + 1
                     WHERE id = found;
                    RETURN found;
                END IF;
            END IF;
            -- No NOTIFY: it would serialize the caller's commit with every other notifying
            -- one. The workers poll the index of what waits (ix_notifications_undrained).
            INSERT INTO {schema}.notifications
                   (user_id, body, urgency, topic, ttl, dedupe_key, source)
            VALUES (p_user_id, body, coalesce(p_urgency, 'normal'), p_topic, p_ttl,
                    p_dedupe_key, p_source)
            RETURNING id INTO found;
            RETURN found;
        END $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
        f"REVOKE ALL ON FUNCTION {schema}.planner_notification_check("
        "uuid, jsonb, text, text, integer, text) FROM PUBLIC",
    ]


def request_export(schema: str) -> str:
    """`planner_request_export()` with the rules of revision 0009, writing the request only."""
    return f"""
    CREATE OR REPLACE FUNCTION planner_request_export(user_id uuid, format text)
    RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    DECLARE
        active {schema}.export_jobs%ROWTYPE;
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
        PERFORM FROM {schema}.users WHERE users.id = user_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = pg_catalog.format('user_id: there is no user %s', user_id);
        END IF;
        SELECT * INTO active FROM {schema}.export_jobs AS job
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
        -- The user's five newest requests, off the (user_id, created_at) index: a range on
        -- created_at alone let a generic plan walk every request of the last day instead.
        recent := ARRAY(
            SELECT job.created_at FROM {schema}.export_jobs AS job
             WHERE job.user_id = planner_request_export.user_id
             ORDER BY job.created_at DESC
             LIMIT 5);
        IF cardinality(recent) = 5 AND recent[5] > now() - interval '24 hours' THEN
            -- The oldest of the five must age out of the 24 hours for one more to fit.
            frees_at := recent[5] + interval '24 hours';
            RAISE EXCEPTION USING ERRCODE = 'PJ429',
                MESSAGE = 'at most 5 exports in 24 hours',
                DETAIL = greatest(1, ceil(extract(epoch FROM frees_at - now())))::bigint::text;
        END IF;
        -- The request only: a worker takes it in and queues its build job in a transaction of
        -- its own (the job engine's insert trigger NOTIFYs, which would serialize this commit).
        INSERT INTO {schema}.export_jobs (user_id, format, status, created_at)
        VALUES (planner_request_export.user_id, planner_request_export.format, 'pending',
                now())
        RETURNING id INTO created;
        RETURN created;
    END $$
    """  # noqa: S608 (the schema is the database's own name for it, quoted by quote_ident)


def upgrade() -> None:
    op.add_column(
        "export_jobs", sa.Column("build_queued_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE export_jobs SET build_queued_at = created_at")
    op.create_index(
        "ix_export_jobs_to_build",
        "export_jobs",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending' AND build_queued_at IS NULL"),
    )
    op.drop_index(
        "ix_export_jobs_status",
        table_name="export_jobs",
        postgresql_where=sa.text("status <> 'expired'"),
    )
    op.create_index(
        "ix_export_jobs_finished_status",
        "export_jobs",
        ["status"],
        postgresql_where=sa.text("status IN ('complete', 'failed')"),
    )
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    for definition in notification_functions(schema):
        op.execute(definition)
    op.execute(request_export(schema))


def downgrade() -> None:
    previous = earlier_revision("0009_safe_way_in.py")
    schema = previous.schema_of_this_database()
    for definition in previous.functions(schema):
        if any(name in definition.split("(")[0] for name in ("_export", "_problem")):
            op.execute(definition)
    earlier = earlier_revision("0006_notification_outbox.py")
    for definition in earlier.FUNCTIONS:
        if "FUNCTION planner_enqueue_notification" in definition:
            op.execute(definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP FUNCTION planner_notification_check(uuid, jsonb, text, text, integer, text)")
    # Requests not yet taken in get the build job the earlier revision queued itself.
    op.execute(
        """
        SELECT procrastinate_defer_jobs_v1(ARRAY(
            SELECT ROW('exports', 'exports.build', 0, NULL, 'export:' || id,
                       jsonb_build_object('export_id', id::text), NULL
                   )::procrastinate_job_to_defer_v1
              FROM export_jobs WHERE status = 'pending' AND build_queued_at IS NULL))
        """
    )
    op.drop_index(
        "ix_export_jobs_to_build",
        table_name="export_jobs",
        postgresql_where=sa.text("status = 'pending' AND build_queued_at IS NULL"),
    )
    op.drop_column("export_jobs", "build_queued_at")
    op.drop_index(
        "ix_export_jobs_finished_status",
        table_name="export_jobs",
        postgresql_where=sa.text("status IN ('complete', 'failed')"),
    )
    op.create_index(
        "ix_export_jobs_status",
        "export_jobs",
        ["status"],
        postgresql_where=sa.text("status <> 'expired'"),
    )
