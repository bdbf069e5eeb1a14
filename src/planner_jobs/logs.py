"""Logging: one format for the whole process, text for people or one JSON object a line.

Every module logs through the standard library (`logging.getLogger(__name__)`); structlog's
formatter renders the records, adding what is bound to the context: the worker binds each job's
id, task, queue and attempt while it runs (`job_context`), and the code that knows a job's user
adds it (`about_user`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import structlog

Format = Literal["text", "json"]


def configure(*, level: str, format: Format | None = None) -> Format:
    """Send every log record to stderr in `format` (text on a terminal, else JSON)."""
    chosen: Format = format or ("text" if sys.stderr.isatty() else "json")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _job_of_the_job_engine,
    ]
    if chosen == "json":
        renderer: list[Any] = [
            # Without the frames' local variables: they hold settings, payloads and tokens.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("alembic.runtime.migration", "procrastinate.blueprints"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return chosen


def _job_of_the_job_engine(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """The job on a line the job engine's worker logs (procrastinate passes it as the record's
    `job` extra: starting a job, its outcome), named as the lines our jobs log name theirs."""
    record = event.get("_record")
    job = getattr(record, "job", None)
    if isinstance(job, dict) and "job_id" not in event:
        event.update(
            job_id=job.get("id"),
            task=job.get("task_name"),
            queue=job.get("queue"),
            attempt=int(job.get("attempts") or 0) + 1,
        )
        user = (job.get("task_kwargs") or {}).get("userId")
        if user is not None:
            event["user_id"] = str(user)
    return event


@contextlib.contextmanager
def job_context(
    *, job_id: int | None, task: str, queue: str, attempt: int, user_id: object = None
) -> Iterator[None]:
    """What every line logged while a job runs carries (its user's id when its arguments name
    one; `about_user` adds it later for the jobs that find it out)."""
    known = {"user_id": str(user_id)} if user_id is not None else {}
    with structlog.contextvars.bound_contextvars(
        job_id=job_id, task=task, queue=queue, attempt=attempt, **known
    ):
        try:
            yield
        finally:
            structlog.contextvars.unbind_contextvars("user_id")


def about_user(user_id: uuid.UUID | str) -> None:
    """From here on in this job (or request), the lines logged name this user."""
    structlog.contextvars.bind_contextvars(user_id=str(user_id))
