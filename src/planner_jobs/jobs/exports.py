"""Data exports: requesting one (API and CLI), building it (worker), and the retention sweep.

A request locks the user's row, decides (reuse, conflict, quota), and inserts the job row and
its procrastinate job in one transaction. The worker claims the row, reads the user's data in
one read-only snapshot, streams it through the format's writer into a temporary file, hands the
finished file to storage, and marks the job complete together with queueing the "ready"
notification.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import procrastinate
import sqlalchemy as sa
from procrastinate.exceptions import JobAborted
from sqlalchemy.engine import Engine

from planner_jobs.db import exports as db
from planner_jobs.domain.exports.formats import FORMATS, file_name
from planner_jobs.domain.exports.requests import Conflict, Reuse, Start, TooMany, decide
from planner_jobs.errors import PlannerError
from planner_jobs.jobs.context import runtime_of
from planner_jobs.jobs.defer import defer_in_transaction
from planner_jobs.storage import StorageError, TransientStorageError

if TYPE_CHECKING:
    from planner_jobs.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETENTION_BATCH = 500
READY_TITLE = "Your export is ready"
USER_SAFE_ERROR = "The export could not be created. Please try again later."


class UnknownUser(PlannerError):
    """There is no such user."""


@dataclass(frozen=True)
class Requested:
    """The outcome of a request: the job, and whether it was just created."""

    job: db.ExportJobRow
    created: bool


class ExportConflict(PlannerError):
    """Another export of this user is on its way."""

    def __init__(self, job: db.ExportJobRow) -> None:
        super().__init__(
            f"an export in {job.format} is already {job.status}; one export runs at a time"
        )
        self.job = job


class ExportQuotaExceeded(PlannerError):
    """The user asked for too many exports in 24 hours."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"at most 5 exports in 24 hours; try again in {retry_after} s")
        self.retry_after = retry_after


def request_export(
    engine: Engine,
    job_app: procrastinate.App,
    user_id: uuid.UUID,
    export_format: str,
    *,
    now: dt.datetime,
) -> Requested:
    """Create (or find) the user's export job; raise `ExportConflict`, `ExportQuotaExceeded`."""
    if export_format not in FORMATS:
        raise PlannerError(f"unknown export format {export_format!r} (json, csv or markdown)")
    with engine.begin() as connection:
        if not db.lock_user(connection, user_id):
            raise UnknownUser(f"no user {user_id}")
        decision = decide(
            export_format, db.jobs_for_decision(connection, user_id, now=now), now=now
        )
        if isinstance(decision, Reuse | Conflict):
            job = db.get_job(connection, uuid.UUID(decision.job_id))
            assert job is not None  # locked above, it cannot have vanished
            if isinstance(decision, Conflict):
                raise ExportConflict(job)
            return Requested(job=job, created=False)
        if isinstance(decision, TooMany):
            raise ExportQuotaExceeded(decision.retry_after)
        assert isinstance(decision, Start)
        job = db.insert_job(connection, user_id, export_format, now=now)
        defer_in_transaction(
            connection,
            job_app,
            "exports.build",
            queueing_lock=f"export:{job.id}",
            export_id=str(job.id),
        )
        return Requested(job=job, created=True)


def download_link(runtime: Runtime, job: db.ExportJobRow, *, now: dt.datetime) -> str | None:
    """A freshly signed link to a complete export, valid `PLANNER_EXPORT_URL_TTL` seconds."""
    if job.status != "complete" or job.storage_key is None:
        return None
    expires = now + dt.timedelta(seconds=runtime.settings.export_url_ttl)
    if job.expires_at is not None:
        expires = min(expires, job.expires_at)
    return runtime.storage.link(
        job.storage_key,
        export_id=str(job.id),
        filename=file_name(job.format, job.created_at.date().isoformat()),
        expires_at=expires,
    )


class TransientFailure(Exception):
    """A failure worth another attempt (storage 5xx, lost database connection)."""


def build_export(context: procrastinate.JobContext, export_id: str) -> str:
    """The `exports.build` task."""
    runtime = runtime_of(context)
    attempt = context.job.attempts + 1

    def check() -> None:
        if context.should_abort():
            raise JobAborted("the worker is stopping: the export will be retried")

    started = time.perf_counter()
    try:
        outcome = _build(runtime, uuid.UUID(export_id), check=check)
    except (JobAborted, TransientFailure) as exc:
        if isinstance(exc, TransientFailure) and attempt >= MAX_ATTEMPTS:
            _give_up(runtime, export_id, f"storage or database kept failing: {exc}", attempt)
        raise
    except Exception as exc:
        _give_up(runtime, export_id, str(exc) or type(exc).__name__, attempt)
        raise
    runtime.metrics.export_seconds.labels(format=outcome.format).observe(
        time.perf_counter() - started
    )
    return outcome.summary


@dataclass(frozen=True)
class _Built:
    format: str
    summary: str


def _build(runtime: Runtime, export_id: uuid.UUID, *, check: Callable[[], None]) -> _Built:
    engine, settings, storage = runtime.engine, runtime.settings, runtime.storage
    try:
        with engine.begin() as connection:
            job = db.claim_job(connection, export_id)
        if job is None:
            return _Built("none", f"export {export_id} is not pending (nothing to do)")
        export_format = FORMATS[job.format]
        now = dt.datetime.now(dt.UTC)
        key = f"{job.user_id}/{job.id}-{secrets.token_urlsafe(16)}.{export_format.extension}"
        staging = settings.data_dir / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=staging, prefix=".export-", delete=False) as out:
            path = Path(out.name)
            try:
                with engine.connect() as connection:
                    snapshot = connection.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                    with snapshot.begin():
                        data = db.read_export_data(
                            snapshot,
                            job.user_id,
                            exported_at=now,
                            tasks_by_plan=export_format.groups_tasks_by_plan,
                            check=check,
                        )
                        export_format.write(data, out)
                size = out.tell()
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        try:
            storage.put(key, path, media_type=export_format.media_type)
        finally:
            path.unlink(missing_ok=True)  # consumed by a successful put; a failed one leaves it
        completed_at = dt.datetime.now(dt.UTC)
        expires_at = completed_at + dt.timedelta(days=settings.export_retention_days)
        with engine.begin() as connection:
            link = storage.link(
                key,
                export_id=str(job.id),
                filename=file_name(job.format, job.created_at.date().isoformat()),
                expires_at=min(
                    expires_at, completed_at + dt.timedelta(seconds=settings.export_url_ttl)
                ),
            )
            if not db.complete_job(
                connection,
                job.id,
                storage_key=key,
                size_bytes=size,
                download_url=link,
                completed_at=completed_at,
                expires_at=expires_at,
            ):
                storage.delete(key)
                return _Built(job.format, f"export {export_id} was settled elsewhere meanwhile")
            defer_in_transaction(
                connection,
                runtime.job_app,
                "notifications.send",
                userId=str(job.user_id),
                payload={
                    "title": READY_TITLE,
                    "body": f"Your {job.format.upper()} export is ready to download.",
                    "tag": f"export-{job.id}",
                },
            )
    except TransientStorageError as exc:
        raise TransientFailure(str(exc)) from exc
    except sa.exc.OperationalError as exc:
        raise TransientFailure("the database connection failed") from exc
    runtime.metrics.exports.labels(format=job.format, outcome="complete").inc()
    runtime.metrics.export_bytes.labels(format=job.format).inc(size)
    return _Built(job.format, f"export {export_id} ({job.format}, {size} bytes) complete")


def _give_up(runtime: Runtime, export_id: str, reason: str, attempt: int) -> None:
    """Mark the job failed with a short message for the user; the details go to the log."""
    log.error("export %s failed on attempt %d: %s", export_id, attempt, reason)
    with runtime.engine.begin() as connection:
        export_format = db.fail_job(connection, uuid.UUID(export_id), error=USER_SAFE_ERROR)
    runtime.metrics.exports.labels(format=export_format or "unknown", outcome="failed").inc()


def expire_exports(runtime: Runtime, *, now: dt.datetime) -> int:
    """Delete the files past their retention and mark their jobs expired; return how many."""
    expired = 0
    while True:
        with runtime.engine.begin() as connection:
            jobs = db.expiring_jobs(connection, now=now, limit=RETENTION_BATCH)
            for job in jobs:
                if job.storage_key:
                    try:
                        runtime.storage.delete(job.storage_key)
                    except StorageError:
                        log.warning("could not delete the file of export %s yet", job.id)
                        continue
                db.mark_expired(connection, job.id)
                expired += 1
        if len(jobs) < RETENTION_BATCH:
            return expired


def expire_exports_task(context: procrastinate.JobContext, timestamp: int) -> str:
    """Periodic task (daily)."""
    runtime = runtime_of(context)
    return f"expired {expire_exports(runtime, now=dt.datetime.now(dt.UTC))} exports"
