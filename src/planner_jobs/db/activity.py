"""What the work did, counted per minute beside the jobs' own outcomes (`job_counts`): user-days
closed, reminders sent, pushes delivered. The dashboard shows the last hour of it."""

from __future__ import annotations

import sqlalchemy as sa

# With psycopg's own placeholders, so that the job engine's connections run it too.
ADD = """
INSERT INTO job_counts (minute, queue, task, outcome, count)
VALUES (date_trunc('minute', now()), %(queue)s, %(task)s, %(what)s, %(n)s)
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


def add(connection: sa.Connection, *, queue: str, task: str, what: str, n: int) -> None:
    """Count `n` more of `what` in this minute (nothing when `n` is 0)."""
    if n:
        connection.exec_driver_sql(ADD, {"queue": queue, "task": task, "what": what, "n": n})


def last_hour(connection: sa.Connection) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for what, total in connection.execute(_LAST_HOUR, {"what": list(KINDS)}):
        counts[what] = int(total)
    return counts
