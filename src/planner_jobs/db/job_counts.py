"""Counts per minute in `job_counts`: the jobs finished, by queue, task and outcome (the worker
middleware adds them up), and what the work did beside them (user-days closed, reminders sent,
pushes delivered). The dashboard's chart and "the last hour" read a few hundred rows of it, not
the job table.

One statement adds to it, whoever counts (`ADD`, with psycopg's own placeholders, so that the
job engine's connections run it too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa

ADD = """
INSERT INTO job_counts (minute, queue, task, outcome, count)
SELECT date_trunc('minute', coalesce(added.minute, now())), added.queue, added.task,
       added.outcome, added.count
  FROM unnest(%(minutes)s::timestamptz[], %(queues)s::text[], %(tasks)s::text[],
              %(outcomes)s::text[], %(counts)s::bigint[])
       AS added(minute, queue, task, outcome, count)
ON CONFLICT (minute, queue, task, outcome) DO UPDATE SET count = job_counts.count + EXCLUDED.count
"""
_LAST_HOUR = sa.text(
    "SELECT outcome, sum(count) FROM job_counts"
    " WHERE minute >= now() - interval '1 hour' AND outcome = ANY(:what) GROUP BY outcome"
)

USER_DAYS = "user_days_closed"
REMINDERS = "reminders_sent"
DELIVERED = "pushes_delivered"
KINDS = (USER_DAYS, REMINDERS, DELIVERED)

Key = tuple[dt.datetime | None, str, str, str]  # minute (None: the database's now), queue, ...


def parameters(counts: Mapping[Key, int]) -> dict[str, list[object]]:
    """`ADD`'s parameters for these counts."""
    keys = list(counts)
    return {
        "minutes": [key[0] for key in keys],
        "queues": [key[1] for key in keys],
        "tasks": [key[2] for key in keys],
        "outcomes": [key[3] for key in keys],
        "counts": [counts[key] for key in keys],
    }


def one(*, queue: str, task: str, what: str, n: int) -> dict[str, list[object]]:
    """`ADD`'s parameters for `n` more of `what` in the database's current minute."""
    return parameters({(None, queue, task, what): n})


def add(connection: sa.Connection, *, queue: str, task: str, what: str, n: int) -> None:
    """Count `n` more of `what` in this minute (nothing when `n` is 0)."""
    if n:
        connection.exec_driver_sql(ADD, one(queue=queue, task=task, what=what, n=n))


def last_hour(connection: sa.Connection) -> dict[str, int]:
    """What the work did in the last hour, by kind."""
    counts = dict.fromkeys(KINDS, 0)
    for what, total in connection.execute(_LAST_HOUR, {"what": list(KINDS)}):
        counts[what] = int(total)
    return counts
