"""Export-ready e-mails: made in the transaction that completes an export, sent by the
`emails.send` job.

One job sends every e-mail that is due, over one connection to the mail server, each in a
transaction of its own that holds its row while the server takes the message and records the
outcome before the next one: a job run again, or two at once, never sends one twice. A
temporary failure (a 4xx answer, no answer) waits and is tried again (`domain.email`); when the
server does not answer, the run stops there and the job comes back when that e-mail is due; a
permanent one (5xx, an address no server takes) is final and recorded. The export is complete
whatever becomes of its e-mail.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import Engine

from planner_jobs import logs
from planner_jobs.db import emails as db
from planner_jobs.db.engine import connect_kwargs, driver_kwargs, libpq_url_of
from planner_jobs.domain.email import Outcome, address_problem, classify, ready_message, retry_delay
from planner_jobs.engine.context import Rescheduled
from planner_jobs.engine.defer import JobApp, defer_or_hasten
from planner_jobs.mail.smtp import Mailer, Refusal
from planner_jobs.metrics import Metrics
from planner_jobs.settings import SmtpServer

log = logging.getLogger(__name__)
events = logs.events(__name__)

TASK = "emails.send"


@dataclass(frozen=True)
class ExportEmails:
    """Whether a completing export is e-mailed (PLANNER_EXPORT_EMAIL: `always`, `no_push`),
    and the job app that queues the sending job."""

    policy: str
    job_app: JobApp

    def queue(self, connection: sa.Connection, export_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """In the completing transaction: make the export's e-mail when the policy says so,
        and have the sending job run now. Whether an e-mail was made."""
        if not db.queue_for_export(connection, export_id, user_id, policy=self.policy):
            return False
        defer_or_hasten(connection, self.job_app, TASK, queueing_lock=TASK)
        return True


@dataclass
class EmailSummary:
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def line(self) -> str:
        return (
            f"sent {self.outcomes[Outcome.SENT]} e-mails, {self.outcomes[Outcome.RETRY]} to try"
            f" again, {self.outcomes[Outcome.FAILED]} failed"
        )


class RetryLater(Rescheduled):
    """E-mails wait for a retry: run the job again at `at`."""

    def __init__(self, at: dt.datetime, summary: EmailSummary) -> None:
        super().__init__(at, f"{summary.line()}; the next is due at {at.isoformat()}")


async def send_due(
    engine: Engine,
    server: SmtpServer,
    *,
    sender: str,
    app_url: str | None,
    metrics: Metrics | None = None,
    pooled: bool = False,
) -> EmailSummary:
    """Send every export e-mail that is due (the `emails.send` task), over one connection to
    the mail server. Raises `RetryLater` when some wait for a later attempt."""
    summary = EmailSummary()
    resume_at: dt.datetime | None = None
    connection = await psycopg.AsyncConnection.connect(
        make_conninfo(libpq_url_of(engine), **connect_kwargs("planner-jobs mail", pooled=pooled)),
        **driver_kwargs(pooled=pooled),
    )
    async with connection, Mailer(server) as sending:
        while True:
            async with connection.transaction():
                waiting = await db.claim(connection)
                if waiting is None:
                    break
                attempt = await _send_one(
                    connection, sending, waiting, sender=sender, app_url=app_url
                )
            summary.outcomes[attempt.outcome] += 1
            if metrics is not None:
                metrics.emails.labels(outcome=attempt.outcome.value).inc()
            if attempt.unanswered:  # the server is away: the others wait with this one
                resume_at = attempt.retry_at
                break
        async with connection.transaction():
            later = await db.next_due(connection)
    if resume_at is None and later is not None and later > dt.datetime.now(dt.UTC):
        resume_at = later  # (one due now is being sent by another run of the job)
    if resume_at is not None:
        raise RetryLater(resume_at, summary)
    return summary


@dataclass(frozen=True)
class _Attempt:
    outcome: Outcome
    retry_at: dt.datetime | None = None  # when it is tried again (a temporary failure)
    unanswered: bool = False  # the server did not answer at all


async def _send_one(
    connection: psycopg.AsyncConnection[Any],
    mailer: Mailer,
    waiting: db.Waiting,
    *,
    sender: str,
    app_url: str | None,
) -> _Attempt:
    """Send one claimed e-mail and record what happened, in the caller's transaction."""
    export_id, attempt = waiting.export_id, waiting.attempts + 1
    now = dt.datetime.now(dt.UTC)
    if (problem := address_problem(waiting.address)) is not None:
        await db.record(
            connection, export_id, status="failed", address=waiting.address, reply=problem
        )
        events.warning("export e-mail not sent: no address to send it to", export_id=str(export_id))
        return _Attempt(Outcome.FAILED)
    message = ready_message(
        export_id=export_id,
        export_format=waiting.format,
        to=waiting.address,
        sender=sender,
        app_url=app_url,
        now=now,
    )
    code: int | None = 250
    try:
        reply = await mailer.send(message)
        outcome = Outcome.SENT
    except Refusal as refusal:
        code, reply, outcome = refusal.code, str(refusal), classify(refusal.code)
    if outcome is Outcome.RETRY:
        delay = retry_delay(attempt)
        if delay is not None:
            retry_at = now + delay
            await db.record(
                connection,
                export_id,
                status="pending",
                address=waiting.address,
                reply=reply,
                next_attempt_at=retry_at,
            )
            events.warning(
                "export e-mail not sent: trying again later",
                export_id=str(export_id),
                attempt=attempt,
                retry_at=retry_at.isoformat(),
                reply=reply,
            )
            return _Attempt(Outcome.RETRY, retry_at, unanswered=code is None)
        outcome, reply = Outcome.FAILED, f"gave up after {attempt} attempts: {reply}"
    status = "sent" if outcome is Outcome.SENT else "failed"
    await db.record(connection, export_id, status=status, address=waiting.address, reply=reply)
    if outcome is Outcome.SENT:
        events.info("export e-mailed", export_id=str(export_id), attempt=attempt)
    else:
        events.warning("export e-mail failed", export_id=str(export_id), reply=reply)
    return _Attempt(outcome)
