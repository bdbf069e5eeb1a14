"""Data exports: requesting one (API and CLI), building it (worker), and the retention sweep.

A request goes through `planner_request_export()`, as the main app's do: the database locks
the user's row, decides (reuse, conflict, quota), and inserts the job row, nothing more (the
job engine's insert trigger NOTIFYs, which would serialize the requesting commits). A worker
takes the request in (`take_in_requests`, from its intake) and queues its build job in a
transaction of its own. The build claims the row and records the one storage
key of the export, writes the user's data (one read-only snapshot, streamed through the format's
writer) into the export's staging file, hands the finished file to storage, and marks the job
complete together with queueing the "ready" notification.

Nothing outlives the job: every attempt writes the same staging file and the same storage key
(a retry replaces what a dead attempt left), a failed export's file is deleted, and the retention
sweep deletes whatever a deletion could not reach at the time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs import logs
from planner_jobs.db import exports as db
from planner_jobs.domain.exports.formats import FORMATS, file_name
from planner_jobs.domain.notifications import NO_LINKS, AppLinks, NewNotification
from planner_jobs.engine.context import JobAborted
from planner_jobs.engine.defer import JobApp, defer_in_transaction
from planner_jobs.errors import PlannerError
from planner_jobs.jobs.emails import ExportEmails
from planner_jobs.jobs.notifications import raise_notifications
from planner_jobs.logs import about_user
from planner_jobs.metrics import Metrics
from planner_jobs.storage.port import Storage, StorageError, TransientStorageError
from planner_jobs.storage.staging import StagingArea

log = logging.getLogger(__name__)
events = logs.events(__name__)

MAX_ATTEMPTS = 5
RETENTION_BATCH = 500
READY_TITLE = "Your export is ready"
USER_SAFE_ERROR = "The export could not be created. Please try again later."


class ExportRefused(PlannerError):
    """The request names no user, or no format, the database knows."""


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

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(f"{message}; try again in {retry_after} s")
        self.retry_after = retry_after


def request_export(engine: Engine, user_id: uuid.UUID, export_format: str) -> Requested:
    """Create (or find) the user's export job through `planner_request_export()`, the rules
    every program goes through; raise `ExportConflict`, `ExportQuotaExceeded`, `ExportRefused`."""
    for _ in range(3):
        try:
            with engine.begin() as connection:
                job, created = db.request(connection, user_id, export_format)
            return Requested(job=job, created=created)
        except sa.exc.DBAPIError as exc:
            error = exc.orig
            if not isinstance(error, psycopg.Error):
                raise
            message = error.diag.message_primary or str(error)
            if error.sqlstate == "22023":
                raise ExportRefused(message) from None
            if error.sqlstate == "PJ429":
                raise ExportQuotaExceeded(message, int(error.diag.message_detail or 1)) from None
            if error.sqlstate != "PJ409":
                raise
        with engine.connect() as connection:
            active = db.active_job(connection, user_id)
        if active is not None:
            raise ExportConflict(active)
        # The other export finished between the refusal and this look: ask again.
    raise PlannerError("the user's exports kept changing; try again")


TAKE_IN_BATCH = 100


def take_in_requests(engine: Engine, job_app: JobApp) -> int:
    """Queue the build job of each export request that has none yet (up to `TAKE_IN_BATCH`),
    in one transaction of the worker's own: how many. The requests are written by
    `planner_request_export()` alone, which queues nothing (the job engine's insert trigger
    NOTIFYs, which would serialize the requesting transactions' commits)."""
    with engine.begin() as connection:
        taken = db.take_in_requests(connection, limit=TAKE_IN_BATCH)
        for export_id in taken:
            defer_in_transaction(
                connection,
                job_app,
                "exports.build",
                queueing_lock=f"export:{export_id}",
                export_id=str(export_id),
            )
    return len(taken)


def storage_key(job: db.ExportJobRow) -> str:
    """Where the export's file is stored: the same for every attempt of the export."""
    return f"{job.user_id}/{job.id}.{FORMATS[job.format].extension}"


def download_name(job: db.ExportJobRow) -> str:
    """The name the user's browser saves the export's file as."""
    return file_name(job.format, job.created_at.date())


def download_link(
    storage: Storage, job: db.ExportJobRow, *, now: dt.datetime, url_ttl: dt.timedelta
) -> str | None:
    """A freshly signed link to a complete export, valid `url_ttl` (never past the file's
    retention); None when the export has no file."""
    if job.status != "complete" or job.storage_key is None:
        return None
    expires = now + url_ttl
    if job.expires_at is not None:
        expires = min(expires, job.expires_at)
    return storage.link(
        job.storage_key, export_id=str(job.id), filename=download_name(job), expires_at=expires
    )


def export_json(
    storage: Storage, job: db.ExportJobRow, *, now: dt.datetime, url_ttl: dt.timedelta
) -> dict[str, Any]:
    """An export job as the API and the CLI show it (the contract's camelCase keys), with a
    fresh download link when it is complete."""
    download_url = download_link(storage, job, now=now, url_ttl=url_ttl)
    return {
        "id": str(job.id),
        "status": job.status,
        "format": job.format,
        "createdAt": _instant(job.created_at),
        "completedAt": _instant(job.completed_at),
        "downloadUrl": download_url,
        "expiresAt": _instant(job.expires_at),
        "error": job.error,
        "source": job.source,
    }


def describe(
    engine: Engine, storage: Storage, export_id: uuid.UUID, *, url_ttl: int
) -> dict[str, Any] | None:
    """An export job as `export_json` shows it, now; None when there is no such export."""
    with engine.connect() as connection:
        job = db.get_job(connection, export_id)
    if job is None:
        return None
    now = dt.datetime.now(dt.UTC)
    return export_json(storage, job, now=now, url_ttl=dt.timedelta(seconds=url_ttl))


def _instant(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class TransientFailure(Exception):
    """A failure worth another attempt (storage 5xx, lost database connection)."""


def build_export(
    engine: Engine,
    storage: Storage,
    metrics: Metrics,
    *,
    export_id: uuid.UUID,
    attempt: int,
    staging: StagingArea,
    retention: dt.timedelta,
    url_ttl: dt.timedelta,
    links: AppLinks = NO_LINKS,
    emails: ExportEmails | None = None,
    check: Callable[[], None] = lambda: None,
) -> str:
    """Build export `export_id` (the `exports.build` task; `attempt` counts from 1).

    Storage hiccups and lost connections raise `TransientFailure`, a shutdown `JobAborted`
    (both retried) until the last attempt; anything else marks the export failed at once.
    `check()` is called every few thousand rows and raises to stop (the worker is stopping).
    """
    started = time.perf_counter()
    try:
        outcome = _build(
            engine,
            storage,
            export_id=export_id,
            staging=staging,
            retention=retention,
            url_ttl=url_ttl,
            links=links,
            emails=emails,
            check=check,
        )
    except (JobAborted, TransientFailure) as exc:
        if attempt >= MAX_ATTEMPTS:  # no attempt follows: the export must not stay processing
            reason = f"the last of {MAX_ATTEMPTS} attempts ended early: {exc}"
            _give_up(engine, storage, metrics, export_id, reason, attempt)
        raise
    except Exception as exc:
        _give_up(engine, storage, metrics, export_id, str(exc) or type(exc).__name__, attempt)
        raise
    if outcome.size is not None:
        metrics.exports.labels(format=outcome.format, outcome="complete").inc()
        metrics.export_bytes.labels(format=outcome.format).inc(outcome.size)
        metrics.export_seconds.labels(format=outcome.format).observe(time.perf_counter() - started)
    return outcome.summary


@dataclass(frozen=True)
class _Built:
    format: str
    summary: str
    size: int | None = None  # bytes stored; None when nothing was


def _build(
    engine: Engine,
    storage: Storage,
    *,
    export_id: uuid.UUID,
    staging: StagingArea,
    retention: dt.timedelta,
    url_ttl: dt.timedelta,
    links: AppLinks,
    emails: ExportEmails | None,
    check: Callable[[], None],
) -> _Built:
    try:
        with engine.begin() as connection:
            job = db.claim_job(connection, export_id)
            if job is None:
                return _Built("none", f"export {export_id} is not pending (nothing to do)")
            about_user(job.user_id)
            db.record_storage_key(connection, job.id, storage_key(job))
        staging.sweep()  # the files of attempts that died on this machine
        with staging.open(job.id) as staged:
            size = _write(engine, job, staged.file, check=check)
            return _store_and_complete(
                engine,
                storage,
                job,
                staged.path,
                size=size,
                retention=retention,
                url_ttl=url_ttl,
                links=links,
                emails=emails,
            )
    except TransientStorageError as exc:
        raise TransientFailure(str(exc)) from exc
    except sa.exc.OperationalError as exc:
        raise TransientFailure("the database connection failed") from exc


def _write(
    engine: Engine, job: db.ExportJobRow, out: BinaryIO, *, check: Callable[[], None]
) -> int:
    """Write the user's data, as of one snapshot, to `out`; return its size."""
    export_format = FORMATS[job.format]
    with engine.connect() as connection:
        snapshot = connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        with snapshot.begin():
            from planner_jobs.db import export_data  # the ORM models: a worker's cost only

            data = export_data.read_export_data(
                snapshot,
                job.user_id,
                exported_at=dt.datetime.now(dt.UTC),
                tasks_by_plan=export_format.groups_tasks_by_plan,
                check=check,
            )
            export_format.write(data, out)
    out.flush()
    return out.tell()


def _store_and_complete(
    engine: Engine,
    storage: Storage,
    job: db.ExportJobRow,
    path: Path,
    *,
    size: int,
    retention: dt.timedelta,
    url_ttl: dt.timedelta,
    links: AppLinks,
    emails: ExportEmails | None,
) -> _Built:
    """Hand the written file to storage (replacing what a dead attempt stored), then mark the
    job complete and queue the "ready" notification in one transaction."""
    key = storage_key(job)
    storage.put(key, path, media_type=FORMATS[job.format].media_type)
    completed_at = dt.datetime.now(dt.UTC)
    # A scheduled export is kept while it is among the user's newest `keep` (the retention
    # sweep), not for the retention days.
    expires_at = None if job.source == "schedule" else completed_at + retention
    completed = dataclasses.replace(
        job, status="complete", storage_key=key, completed_at=completed_at, expires_at=expires_at
    )
    link = download_link(storage, completed, now=completed_at, url_ttl=url_ttl)
    assert link is not None  # complete, with a file
    with engine.begin() as connection:
        if not db.complete_job(
            connection,
            job.id,
            storage_key=key,
            size_bytes=size,
            download_url=link,
            completed_at=completed_at,
            expires_at=expires_at,
        ):
            settled = db.get_job(connection, job.id)
            if settled is None or settled.status != "complete":
                storage.delete(key)  # failed or expired meanwhile: its file must not stay
            return _Built(job.format, f"export {job.id} was settled elsewhere meanwhile")
        raise_notifications(
            connection,
            [
                NewNotification(
                    user_id=job.user_id,
                    payload=links.shown(
                        {
                            "title": READY_TITLE,
                            "body": f"Your {job.format.upper()} export is ready to download.",
                            "tag": f"export-{job.id}",
                        },
                        path=f"/exports/{job.id}",
                    ),
                    dedupe_key=f"export:{job.id}",
                )
            ],
            source="export",
        )
        if emails is not None:
            emails.queue(connection, job.id, job.user_id)
    return _Built(job.format, f"export {job.id} ({job.format}, {size} bytes) complete", size)


def _give_up(
    engine: Engine,
    storage: Storage,
    metrics: Metrics,
    export_id: uuid.UUID,
    reason: str,
    attempt: int,
) -> None:
    """Mark the job failed with a short message for the user, and delete any file an earlier
    attempt stored (the retention sweep retries a deletion that fails now); the details go to
    the log."""
    events.error("export failed", export_id=str(export_id), attempt=attempt, reason=reason)
    with engine.begin() as connection:
        failed = db.fail_job(connection, export_id, error=USER_SAFE_ERROR)
    metrics.exports.labels(format=failed.format if failed else "unknown", outcome="failed").inc()
    if failed is not None and failed.storage_key is not None:
        _delete_failed_file(engine, storage, failed.id, failed.storage_key)


def _delete_failed_file(engine: Engine, storage: Storage, export_id: uuid.UUID, key: str) -> bool:
    try:
        storage.delete(key)
    except StorageError as exc:
        events.warning(
            "could not delete a failed export's file yet", export_id=str(export_id), error=str(exc)
        )
        return False
    with engine.begin() as connection:
        db.forget_storage_key(connection, export_id)
    return True


@dataclass(frozen=True)
class ExpireSummary:
    expired: int

    def line(self) -> str:
        return f"expired {self.expired} exports"


def expire_exports(
    engine: Engine, storage: Storage, *, now: dt.datetime, retention: dt.timedelta
) -> ExpireSummary:
    """Delete the files past their retention (for a scheduled export: past the newest its
    user's schedule keeps) and mark their jobs expired; delete the files failed exports may
    have left."""
    expired = 0
    while True:
        with engine.begin() as connection:
            jobs = db.expiring_jobs(connection, now=now, retention=retention, limit=RETENTION_BATCH)
            for job in jobs:
                if job.storage_key:
                    try:
                        storage.delete(job.storage_key)
                    except StorageError:
                        log.warning("could not delete the file of export %s yet", job.id)
                        continue
                if job.status == "failed":
                    db.forget_storage_key(connection, job.id)
                else:
                    db.mark_expired(connection, job.id)
                    expired += 1
        if len(jobs) < RETENTION_BATCH:
            return ExpireSummary(expired=expired)


STAGING_SWEEP_SECONDS = 60.0  # how often a process working on exports clears dead staging files


async def keep_staging_clean(staging: StagingArea) -> None:
    """Remove the staging files of dead attempts now and every minute, until cancelled (beside
    the jobs of a worker of the exports queue)."""
    while True:
        try:
            await asyncio.to_thread(staging.sweep)
        except OSError as exc:
            log.warning("could not sweep the staging folder %s: %s", staging.folder, exc)
        await asyncio.sleep(STAGING_SWEEP_SECONDS)
