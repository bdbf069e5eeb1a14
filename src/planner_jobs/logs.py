"""Logging: one format for the whole process, text for people or one JSON object a line.

Every module logs through the standard library (`logging.getLogger(__name__)`); structlog's
formatter renders the records, adding what is bound to the context: the worker binds each job's
id, task, queue and attempt while it runs (`job_context`), and the code that knows a job's user
adds it (`about_user`). On the hot paths an event is a short name and its values are fields
(`events(__name__).error("push refused", host=..., status=...)`), which a JSON line carries as
keys an operator filters on.

No line holds a secret: every rendered line, ours and our libraries' (uvicorn's access lines
carry each request's query string), has the secrets of URLs and credentials blanked out last
(`redact`): signed links' signatures, S3 presigned signatures and credentials, tokens and
passwords in query strings, bearer and basic credentials, a database URL's password.
"""

from __future__ import annotations

import contextlib
import logging
import re
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
        _fields_of_the_event,
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
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *renderer,
                _redact_rendered,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Routine lines of every start, which say nothing an operator acts on (the schedule is
    # `planner-jobs jobs schedule`; the migration's outcome is our own line).
    for noisy in (
        "alembic.runtime.migration",
        "alembic.runtime.plugins",
        "procrastinate.blueprints",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    periodic = logging.getLogger("procrastinate.periodic")
    if not any(isinstance(f, _NotRegistering) for f in periodic.filters):
        periodic.addFilter(_NotRegistering())
    return chosen


class _NotRegistering(logging.Filter):
    """Drops procrastinate's "Registering task ... to run periodically" (one per periodic
    task at each start); keeps its lines about the ticks it defers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Registering task")


REDACTED = "[redacted]"
_SECRETS = (
    # a query parameter that holds a secret: our signed links, S3's SigV4 (and SigV2) links,
    # tokens and passwords anyone may put in a URL
    re.compile(
        r"(?i)([?&;](?:signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token"
        r"|awsaccesskeyid|token|access_token|id_token|refresh_token|code|password|passwd"
        r"|secret|client_secret|api_key|apikey|key)=)[^&;\s\"'#]*"
    ),
    # credentials in a header or a message: "Bearer abc...", "Basic dXNl..."
    re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}"),
    # a password in a URL's user info: postgresql://user:secret@host
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@\"']+:)[^@\s\"']+@"),
)
_REPLACEMENTS = (rf"\1{REDACTED}", rf"\1\2{REDACTED}", rf"\1{REDACTED}@")


def redact(text: str) -> str:
    """`text` with the secrets of URLs and credentials replaced by `[redacted]`."""
    for pattern, replacement in zip(_SECRETS, _REPLACEMENTS, strict=True):
        text = pattern.sub(replacement, text)
    return text


def _redact_rendered(_logger: Any, _method: str, line: Any) -> Any:
    """The last step: the whole rendered line (message, fields, traceback) redacted."""
    return redact(line) if isinstance(line, str) else line


_FIELDS = "planner_fields"  # the record attribute `Events` puts an event's fields in


class Events:
    """A logger of events with fields: `events(__name__).info("push refused", host=h)`.

    Through the standard library like every other line (the fields ride on the record and
    become keys of the rendered line); the record's message is the event alone.
    """

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(name)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        exc_info = fields.pop("exc_info", None)
        if self._log.isEnabledFor(level):
            self._log.log(level, event, exc_info=exc_info, extra={_FIELDS: fields}, stacklevel=3)


def events(name: str) -> Events:
    return Events(name)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of an event logged through `Events` (for tests reading records)."""
    found: dict[str, Any] = getattr(record, _FIELDS, {})
    return found


def _fields_of_the_event(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in fields_of(event["_record"]).items() if "_record" in event else ():
        event.setdefault(key, value)
    return event


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
