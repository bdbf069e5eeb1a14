"""The way in, safe to call: a fixed search path, EXECUTE for the granted roles only, and a
payload nested too deep refused as a bad argument.

- `planner_notify()` and `planner_request_export()` run as their owner (SECURITY DEFINER).
  Revision 0006 gave them `SET search_path FROM CURRENT`, which captured `"$user", public`
  without `pg_temp`: PostgreSQL then searches the caller's temporary schema first, so a caller
  could put a temporary table named `notifications` (or `export_jobs`) with a trigger of its own
  in front of ours and have the trigger run with the owner's rights. They now have
  `search_path = <the schema>, pg_temp` (the PostgreSQL manual, "Writing SECURITY DEFINER
  Functions Safely") and name every object of ours with its schema.
- EXECUTE on every `planner_*` function is revoked from PUBLIC; `planner-jobs grant ROLE` gives
  it on the two functions of the way in to the roles that should call them.
- `planner_json_compact()` was recursive PL/pgSQL: a payload nested 600 deep ran out of stack
  (SQLSTATE 54001). It is now one regular expression over PostgreSQL's own rendering (the same
  text, 2.7 times faster), and `planner_notification_problem()` refuses a payload nested deeper
  than 32 levels (22023, naming `payload`) before measuring it, with a jsonpath query that looks
  no deeper than that.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MAX_PLAINTEXT = 3993  # bytes of JSON text one aes128gcm record of 4096 bytes holds
MAX_TTL = 28 * 24 * 3600
MAX_DEPTH = 32  # levels of objects and arrays in a payload, the payload itself the first

# The functions of the way in, and the ones that only planner-jobs (their owner) calls.
WAY_IN = (
    "planner_notify(uuid, jsonb, text, text, integer, text)",
    "planner_request_export(uuid, text)",
)
HELPERS = (
    "planner_enqueue_notification(uuid, jsonb, text, text, integer, text, text)",
    "planner_notification_problem(uuid, jsonb, text, text, integer, text)",
    "planner_json_compact(jsonb)",
)


def functions(schema: str) -> list[str]:
    """The definitions of this revision, for the schema (an identifier, quoted) they live in."""
    return [
        # PostgreSQL renders a jsonb with a space after each ':' and ',' and nowhere else
        # outside strings; the expression keeps every string as it is and drops those spaces.
        r"""
        CREATE OR REPLACE FUNCTION planner_json_compact(document jsonb) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT regexp_replace(document::text, '("(?:[^"\\]|\\.)*")| ', '\1', 'g')
        $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION planner_notification_problem(
            user_id uuid, payload jsonb, urgency text, topic text, ttl integer, dedupe_key text
        ) RETURNS text
        LANGUAGE plpgsql STABLE AS $$
        DECLARE
            size integer;
        BEGIN
            IF user_id IS NULL THEN
                RETURN 'user_id: is required';
            END IF;
            IF NOT EXISTS (SELECT FROM {schema}.users WHERE users.id = user_id) THEN
                RETURN format('user_id: there is no user %s', user_id);
            END IF;
            IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
                RETURN 'payload: must be a JSON object';
            END IF;
            -- An object or array at level {MAX_DEPTH} (the payload is level 0 of the path) is
            -- the {MAX_DEPTH + 1}th nested one; the path looks no deeper than that.
            IF jsonb_path_exists(payload,
                'strict $.**{{{MAX_DEPTH}}} ? (@.type() == "object" || @.type() == "array")')
            THEN
                RETURN 'payload: must not be nested deeper than {MAX_DEPTH} levels';
            END IF;
            size := octet_length({schema}.planner_json_compact(payload));
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
        f"""
        CREATE OR REPLACE FUNCTION planner_notify(
            user_id uuid,
            payload jsonb,
            urgency text DEFAULT 'normal',
            topic text DEFAULT NULL,
            ttl integer DEFAULT NULL,
            dedupe_key text DEFAULT NULL
        ) RETURNS bigint
        LANGUAGE sql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
            SELECT {schema}.planner_enqueue_notification($1, $2, $3, $4, $5, $6, 'sql')
        $$
        """,
        # The schema is the database's own name for it, quoted by quote_ident().
        f"""
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
            recent := ARRAY(
                SELECT job.created_at FROM {schema}.export_jobs AS job
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
            INSERT INTO {schema}.export_jobs (user_id, format, status, created_at)
            VALUES (planner_request_export.user_id, planner_request_export.format, 'pending',
                    now())
            RETURNING id INTO created;
            -- Its build job, in this transaction: procrastinate's defer function (3.10; a
            -- revision that upgrades procrastinate updates this line).
            PERFORM {schema}.procrastinate_defer_jobs_v1(ARRAY[ROW(
                'exports', 'exports.build', 0, NULL, 'export:' || created,
                jsonb_build_object('export_id', created::text), NULL
            )::{schema}.procrastinate_job_to_defer_v1]);
            RETURN created;
        END $$
        """,  # noqa: S608
    ]


def schema_of_this_database() -> str:
    """The schema the migrations create our objects in, quoted as an identifier."""
    return str(op.get_bind().scalar(sa.text("SELECT quote_ident(current_schema())")))


def upgrade() -> None:
    for definition in functions(schema_of_this_database()):
        op.execute(definition)
    for function in (*WAY_IN, *HELPERS):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")


def downgrade() -> None:
    for definition in earlier_revision("0006_notification_outbox.py").FUNCTIONS:
        op.execute(definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    for function in (*WAY_IN, *HELPERS):
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO PUBLIC")
