"""The take-over of `notifications.send` jobs: a running one takes the others waiting beside it.

A job of the job engine costs more than sending a message, so under load the send path pays it
once per batch: the waiting `notifications.send` jobs whose arguments have the expected shape and
meet the rules have their notifications queued through the one way in
(`planner_enqueue_notification()`, each job's id its deduplication key unless it has one), and
are finished with procrastinate's own function, in one transaction. Any other is left to run,
and fail with its reason, on its own.
"""

from __future__ import annotations

import procrastinate

from planner_jobs.db import job_counts

# The `notifications.send` jobs waiting beside the one running, taken in one go: their
# notifications queued (each job's id its deduplication key unless it has one) and the jobs
# marked running; then finished with procrastinate's own function (3.10: a revision upgrading
# procrastinate checks these statements), so their timeline reads started, succeeded. Only jobs
# whose arguments have the expected shape and meet the rules are taken; any other is left to
# run, and fail with its reason, on its own.
_TAKE_SEND_JOBS = """
WITH candidate AS (
    SELECT id, args FROM procrastinate_jobs
     WHERE queue_name = 'notifications' AND task_name = 'notifications.send'
       AND status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
     ORDER BY priority DESC, id
     LIMIT %(limit)s
     FOR UPDATE SKIP LOCKED
), shaped AS (
    SELECT id, (args->>'userId')::uuid AS user_id, args->'payload' AS payload,
           coalesce(args->>'urgency', 'normal') AS urgency, args->>'topic' AS topic,
           (args->>'ttl')::integer AS ttl,
           coalesce(args->>'dedupeKey', 'planner-job:' || id) AS dedupe_key
      FROM candidate
     WHERE args->>'userId' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
       AND coalesce(jsonb_typeof(args->'urgency'), 'string') = 'string'
       AND coalesce(jsonb_typeof(args->'topic'), 'string') IN ('string', 'null')
       AND coalesce(jsonb_typeof(args->'dedupeKey'), 'string') IN ('string', 'null')
       AND coalesce(args->>'ttl', '0') ~ '^[0-9]{1,7}$'
       AND args - ARRAY['userId', 'payload', 'urgency', 'topic', 'ttl', 'dedupeKey'] = '{}'
), valid AS (
    SELECT * FROM shaped
     WHERE planner_notification_problem(user_id, payload, urgency, topic, ttl, dedupe_key)
           IS NULL
), queued AS (
    SELECT id, planner_enqueue_notification(
               user_id, payload, urgency, topic, ttl, dedupe_key, 'job') AS notification
      FROM valid
)
UPDATE procrastinate_jobs SET status = 'doing'
  FROM queued WHERE procrastinate_jobs.id = queued.id
RETURNING procrastinate_jobs.id
"""
_FINISH = "SELECT procrastinate_finish_job_v1(id, 'succeeded', false) FROM unnest(%(ids)s) AS id"


async def absorb_send_jobs(app: procrastinate.App, *, limit: int) -> int:
    """Queue the notifications of up to `limit` `notifications.send` jobs waiting, and mark
    those jobs done, in one transaction on the app's pool: how many were taken."""
    connector = app.connector
    assert isinstance(connector, procrastinate.PsycopgConnector)  # engine.app.new_app's
    async with connector.pool.connection() as connection, connection.transaction():
        taken = [
            row[0]
            for row in await (
                await connection.execute(_TAKE_SEND_JOBS, {"limit": limit})
            ).fetchall()
        ]
        if taken:
            await connection.execute(_FINISH, {"ids": taken})
            await connection.execute(
                job_counts.ADD,
                job_counts.one(
                    queue="notifications", task="notifications.send", what="succeeded", n=len(taken)
                ),
            )
    return len(taken)
