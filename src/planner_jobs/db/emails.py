"""The export-ready e-mails: made beside the export they announce, claimed one at a time by the
sending job (the row stays locked while the mail server takes the message, and its outcome is
written in that transaction). The operators' view reads them beside their exports
(`inspection.views.recent_exports`)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import class_row

_QUEUE = sa.text(
    """
    INSERT INTO export_emails (export_id)
    SELECT :export_id
     WHERE :policy = 'always'
        OR (:policy = 'no_push'
            AND NOT EXISTS (SELECT FROM push_subscriptions WHERE user_id = :user_id))
    ON CONFLICT DO NOTHING
    RETURNING export_id
    """
)


def queue_for_export(
    connection: sa.Connection, export_id: uuid.UUID, user_id: uuid.UUID, *, policy: str
) -> bool:
    """Make the e-mail of a completing export when `policy` (PLANNER_EXPORT_EMAIL) says so:
    `always`, `no_push` (its user has no push subscription), `never`. Whether one was made."""
    made = connection.execute(
        _QUEUE, {"export_id": export_id, "user_id": user_id, "policy": policy}
    ).first()
    return made is not None


@dataclass(frozen=True)
class Waiting:
    """An e-mail claimed for sending: its export and where it goes."""

    export_id: uuid.UUID
    format: str
    address: str
    attempts: int  # before this one


_CLAIM = """
    SELECT e.export_id, j.format, u.email AS address, e.attempts
      FROM export_emails e
      JOIN export_jobs j ON j.id = e.export_id
      JOIN users u ON u.id = j.user_id
     WHERE e.status = 'pending' AND e.next_attempt_at <= now()
     ORDER BY e.next_attempt_at
     LIMIT 1
       FOR UPDATE OF e SKIP LOCKED
"""


async def claim(connection: psycopg.AsyncConnection[Any]) -> Waiting | None:
    """The next e-mail due, locked for the caller's transaction (others' are skipped)."""
    async with connection.cursor(row_factory=class_row(Waiting)) as cursor:
        await cursor.execute(_CLAIM)
        return await cursor.fetchone()


async def record(
    connection: psycopg.AsyncConnection[Any],
    export_id: uuid.UUID,
    *,
    status: str,
    address: str,
    reply: str,
    next_attempt_at: dt.datetime | None = None,
) -> None:
    """One attempt's outcome: `sent` or `failed` (final), or `pending` until `next_attempt_at`."""
    await connection.execute(
        """
        UPDATE export_emails
           SET status = %(status)s, attempts = attempts + 1, address = %(address)s,
               reply = left(%(reply)s, 500),
               next_attempt_at = coalesce(%(next)s, next_attempt_at),
               finished_at = CASE WHEN %(status)s = 'pending' THEN NULL ELSE now() END
         WHERE export_id = %(export_id)s
        """,
        {
            "status": status,
            "address": address,
            "reply": reply,
            "next": next_attempt_at,
            "export_id": export_id,
        },
    )


async def next_due(connection: psycopg.AsyncConnection[Any]) -> dt.datetime | None:
    """When the next waiting e-mail is due (None: none waits)."""
    cursor = await connection.execute(
        "SELECT min(next_attempt_at) FROM export_emails WHERE status = 'pending'"
    )
    row = await cursor.fetchone()
    return None if row is None else row[0]
