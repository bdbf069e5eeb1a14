"""Declarative Web Push messages are checked where they enter, like every other rule.

A payload whose top-level `web_push` is 8030 is WebKit's declarative form (Safari 18.4+ shows it
without a service worker): the browser drops a malformed one without a word, so the database
refuses it (SQLSTATE 22023, "argument: reason", as every bad payload) in the one place of the
rules, `planner_notification_check()`, which every way in reaches (the main app's
`planner_notify()`, the HTTP endpoint, the job, the CLI, planner-jobs' own notifications).

- `planner_declarative_problem(payload)`: the Push API's rules for such a message (a
  `notification` object with a non-empty `title` and an absolute `navigate` URL; `body`,
  `lang`, `tag` strings; `dir` auto, ltr or rtl; `icon` an absolute URL; `silent` a boolean;
  `data` any JSON; `app_badge` an integer from 0 to 2^64 - 1 and `mutable` a boolean, read at
  the message's top level as the specification says, and in its `notification` as WebKit's own
  example has them).
- `planner_settings`: one row of what the database's rules must know about the planner-jobs that
  migrates it: whether it runs in development, where a link may be plain `http:` (a web app on a
  laptop). `planner-jobs migrate` and `run` write it; a database migrated otherwise is treated as
  production (`https:` only).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from planner_jobs.db.migrate import earlier_revision

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

MAX_BADGE = 2**64 - 1  # the Push API's app_badge: a 64-bit unsigned integer


def functions(schema: str) -> list[str]:
    """The definitions of this revision, for the schema (an identifier, quoted) they live in."""
    return [
        # An absolute URL with a host: https:, or http: where the database says it serves
        # development. The text is shown shortened in the refusal.
        f"""
        CREATE FUNCTION planner_link_problem(argument text, link jsonb) RETURNS text
        LANGUAGE plpgsql STABLE AS $$
        DECLARE
            written text := link #>> '{{}}';
            development boolean;
        BEGIN
            IF jsonb_typeof(link) = 'string' AND written ~* '^https://[^\\s/?#]+([/?#]\\S*)?$' THEN
                RETURN NULL;
            END IF;
            SELECT settings.development INTO development FROM {schema}.planner_settings AS settings;
            IF jsonb_typeof(link) = 'string' AND written ~* '^http://[^\\s/?#]+([/?#]\\S*)?$'
               AND development THEN
                RETURN NULL;
            END IF;
            RETURN format('%s: must be an absolute https: URL%s, not %s', argument,
                          CASE WHEN development THEN ' (or http: in development)' ELSE '' END,
                          coalesce(left(link::text, 100), 'missing'));
        END $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
        f"""
        CREATE FUNCTION planner_declarative_problem(payload jsonb) RETURNS text
        LANGUAGE plpgsql STABLE AS $$
        DECLARE
            shown jsonb := payload->'notification';
            problem text;
            member text;
            holder record;
        BEGIN
            IF jsonb_typeof(shown) IS DISTINCT FROM 'object' THEN
                RETURN 'payload.notification: a declarative message ("web_push": 8030) must'
                       ' hold a notification object';
            END IF;
            IF jsonb_typeof(shown->'title') IS DISTINCT FROM 'string'
               OR btrim(shown->>'title') = '' THEN
                RETURN 'payload.notification.title: must be a non-empty string';
            END IF;
            problem := {schema}.planner_link_problem(
                'payload.notification.navigate', shown->'navigate');
            IF problem IS NOT NULL THEN
                RETURN problem;
            END IF;
            FOREACH member IN ARRAY ARRAY['body', 'lang', 'tag'] LOOP
                IF shown ? member AND jsonb_typeof(shown->member) <> 'string' THEN
                    RETURN format('payload.notification.%s: must be a string', member);
                END IF;
            END LOOP;
            IF shown ? 'dir' AND shown->'dir' NOT IN ('"auto"', '"ltr"', '"rtl"') THEN
                RETURN format('payload.notification.dir: must be auto, ltr or rtl, not %s',
                              left((shown->'dir')::text, 100));
            END IF;
            IF shown ? 'icon' THEN
                problem := {schema}.planner_link_problem('payload.notification.icon',
                                                         shown->'icon');
                IF problem IS NOT NULL THEN
                    RETURN problem;
                END IF;
            END IF;
            IF shown ? 'silent' AND jsonb_typeof(shown->'silent') <> 'boolean' THEN
                RETURN 'payload.notification.silent: must be true or false';
            END IF;
            FOR holder IN SELECT * FROM (VALUES ('payload', payload),
                                                ('payload.notification', shown)) AS h(place, body)
            LOOP
                IF holder.body ? 'app_badge' AND NOT (
                       jsonb_typeof(holder.body->'app_badge') = 'number'
                   AND (holder.body->>'app_badge')::numeric
                       BETWEEN 0 AND {MAX_BADGE}
                   AND (holder.body->>'app_badge')::numeric
                       = trunc((holder.body->>'app_badge')::numeric)) THEN
                    RETURN format('%s.app_badge: must be an integer from 0 to {MAX_BADGE}',
                                  holder.place);
                END IF;
                IF holder.body ? 'mutable' AND jsonb_typeof(holder.body->'mutable') <> 'boolean'
                THEN
                    RETURN format('%s.mutable: must be true or false', holder.place);
                END IF;
            END LOOP;
            RETURN NULL;
        END $$
        """,  # noqa: S608 (the schema is the database's own name, quoted by quote_ident)
        check_function(schema, declarative=True),
        *(
            f"REVOKE ALL ON FUNCTION {schema}.{function} FROM PUBLIC"
            for function in (
                "planner_link_problem(text, jsonb)",
                "planner_declarative_problem(jsonb)",
            )
        ),
    ]


# Where revision 0010's `planner_notification_check()` measures the payload: the declarative
# rules come just before, once its nesting is known to be sane.
_SIZE_STEP = "            -- PostgreSQL's rendering, whose spaces the sender drops"


def check_function(schema: str, *, declarative: bool) -> str:
    """`planner_notification_check()` as revision 0010 made it, and with the declarative form's
    rules (`declarative`) before the payload is measured."""
    [earlier] = [
        str(definition)
        for definition in earlier_revision("0010_commit_without_notify.py").notification_functions(
            schema
        )
        if "FUNCTION planner_notification_check(" in definition
    ]
    earlier = earlier.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    if not declarative:
        return earlier
    assert earlier.count(_SIZE_STEP) == 1, "revision 0010's text is what this one amends"
    step = f"""            IF payload->'web_push' = '8030'::jsonb THEN
                problem := {schema}.planner_declarative_problem(payload);
                IF problem IS NOT NULL THEN
                    RETURN;
                END IF;
            END IF;
"""
    return earlier.replace(_SIZE_STEP, step + _SIZE_STEP)


def upgrade() -> None:
    op.create_table(
        "planner_settings",
        sa.Column("one", sa.Boolean(), server_default=sa.text("true"), primary_key=True),
        sa.Column("development", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint("one", name="one_row"),
    )
    op.execute("INSERT INTO planner_settings DEFAULT VALUES")
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    for definition in functions(schema):
        op.execute(definition)


def downgrade() -> None:
    schema = earlier_revision("0009_safe_way_in.py").schema_of_this_database()
    op.execute(check_function(schema, declarative=False))
    op.execute("DROP FUNCTION planner_declarative_problem(jsonb)")
    op.execute("DROP FUNCTION planner_link_problem(text, jsonb)")
    op.drop_table("planner_settings")
