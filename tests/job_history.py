"""A week of finished jobs, as a busy installation keeps them: for the inspection room's query
plans (tests) and times (bench/inspection.py)."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa

from planner_jobs.catalogue import PERIODIC, TASKS

_JOBS = """
INSERT INTO procrastinate_jobs (queue_name, task_name, status, args, attempts)
SELECT t.queue, t.task,
       CASE WHEN n % 200 = 0 THEN 'failed' WHEN n % 200 = 1 THEN 'cancelled' ELSE 'succeeded' END
         ::procrastinate_job_status,
       CASE t.task  -- what each task's jobs name (the jobs about a user are looked up by it)
         WHEN 'notifications.send' THEN
           jsonb_build_object('userId', gen_random_uuid(), 'payload', '{}'::jsonb)
         WHEN 'exports.build' THEN jsonb_build_object('export_id', gen_random_uuid())
         WHEN 'notifications.deliver' THEN
           jsonb_build_object('notificationIds', jsonb_build_array(n))
         ELSE jsonb_build_object('timestamp', n)
       END, 1
  FROM generate_series(1, :count) AS n
  JOIN unnest(CAST(:queues AS text[]), CAST(:tasks AS text[])) WITH ORDINALITY
       AS t(queue, task, i) ON t.i = n % :kinds + 1
"""
# Queued and succeeded (what the views read), spread over the seven days finished jobs are kept.
_EVENTS = """
INSERT INTO procrastinate_events (job_id, type, at)
SELECT j.id, e.type::procrastinate_job_event_type,
       now() - interval '7 days' * (1 - j.id::float / :last) + e.after
  FROM procrastinate_jobs j
 CROSS JOIN (VALUES ('deferred', interval '0'), ('succeeded', interval '2 seconds'))
         AS e(type, after)
 WHERE j.id > :first AND (e.type <> 'succeeded' OR j.status = 'succeeded')
"""


def add_finished_jobs(connection: sa.Connection, count: int) -> None:
    """`count` finished jobs (1 in 200 failed, 1 in 200 cancelled) of every task, with their
    events; then ANALYZE, as autovacuum would after such a load."""
    first = connection.scalar(sa.text("SELECT coalesce(max(id), 0) FROM procrastinate_jobs"))
    kinds = [(task.queue, task.name) for task in (*TASKS, *PERIODIC)]
    connection.execute(
        sa.text(_JOBS),
        {
            "count": count,
            "queues": [queue for queue, _ in kinds],
            "tasks": [name for _, name in kinds],
            "kinds": len(kinds),
        },
    )
    last = connection.scalar(sa.text("SELECT max(id) FROM procrastinate_jobs"))
    with contextlib.suppress(sa.exc.DBAPIError), connection.begin_nested():
        # The events' foreign key checked row by row doubles the load; a superuser skips it.
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    connection.execute(sa.text(_EVENTS), {"first": first, "last": last})
    connection.commit()
    connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
        "VACUUM ANALYZE procrastinate_jobs, procrastinate_events"
    )
