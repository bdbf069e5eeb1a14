"""`/api/exports`: request an export, follow it, download it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import FileResponse, JSONResponse

from planner_jobs.api.auth import CurrentUserId
from planner_jobs.api.deps import RuntimeDep
from planner_jobs.api.schemas import ExportConflictOut, ExportOut, ExportRequest, Problem
from planner_jobs.db import exports as db
from planner_jobs.domain.exports.formats import FORMATS, file_name
from planner_jobs.jobs.exports import (
    ExportConflict,
    ExportQuotaExceeded,
    download_link,
    request_export,
)
from planner_jobs.runtime import Runtime
from planner_jobs.storage.local import LocalStorage
from planner_jobs.storage.signing import verify

router = APIRouter(prefix="/api/exports", tags=["exports"])


def export_out(runtime: Runtime, job: db.ExportJobRow, *, now: dt.datetime) -> ExportOut:
    return ExportOut(
        id=job.id,
        status=job.status,
        format=job.format,
        created_at=job.created_at,
        completed_at=job.completed_at,
        download_url=download_link(runtime, job, now=now),
        expires_at=job.expires_at,
        error=job.error,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportOut,
    responses={
        200: {"model": ExportOut, "description": "The same export is already on its way"},
        409: {"model": ExportConflictOut, "description": "Another format is on its way"},
        429: {"model": Problem, "description": "More than 5 exports in 24 hours"},
    },
)
def create_export(
    body: ExportRequest, user_id: CurrentUserId, runtime: RuntimeDep, response: Response
) -> ExportOut | JSONResponse:
    """Request an export; 202 with the new job, or 200 with the one already on its way."""
    now = dt.datetime.now(dt.UTC)
    try:
        requested = request_export(runtime.engine, runtime.job_app, user_id, body.format, now=now)
    except ExportConflict as exc:
        conflict = ExportConflictOut(
            detail=str(exc), active_export=export_out(runtime, exc.job, now=now)
        )
        return JSONResponse(conflict.model_dump(mode="json", by_alias=True), status_code=409)
    except ExportQuotaExceeded as exc:
        return JSONResponse(
            Problem(detail=str(exc)).model_dump(by_alias=True),
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if not requested.created:
        response.status_code = status.HTTP_200_OK
    return export_out(runtime, requested.job, now=now)


@router.get("")
def list_exports(user_id: CurrentUserId, runtime: RuntimeDep) -> list[ExportOut]:
    """The user's exports, newest first."""
    now = dt.datetime.now(dt.UTC)
    with runtime.engine.connect() as connection:
        jobs = db.list_jobs(connection, user_id)
    return [export_out(runtime, job, now=now) for job in jobs]


@router.get("/{export_id}", responses={404: {"model": Problem}})
def get_export(export_id: uuid.UUID, user_id: CurrentUserId, runtime: RuntimeDep) -> ExportOut:
    """One export; `downloadUrl` is freshly signed when it is complete."""
    with runtime.engine.connect() as connection:
        job = db.get_job(connection, export_id, user_id=user_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such export")
    return export_out(runtime, job, now=dt.datetime.now(dt.UTC))


@router.get(
    "/{export_id}/download",
    response_class=FileResponse,
    responses={403: {"model": Problem}, 404: {"model": Problem}},
)
def download_export(
    export_id: uuid.UUID,
    runtime: RuntimeDep,
    expires: Annotated[str, Query()] = "",
    signature: Annotated[str, Query()] = "",
) -> FileResponse:
    """The file of a complete export (local storage): the signed link is the credential."""
    storage = runtime.storage
    if not isinstance(storage, LocalStorage):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "downloads are served by the storage")
    secret = runtime.settings.signing_secret.get_secret_value()
    if not verify(str(export_id), expires, signature, secret=secret, now=dt.datetime.now(dt.UTC)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the link is invalid or has expired")
    with runtime.engine.connect() as connection:
        job = db.get_job(connection, export_id)
    if job is None or job.status != "complete" or job.storage_key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this export has no file (any more)")
    path = storage.path_of(job.storage_key)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this export has no file (any more)")
    return FileResponse(
        path,
        media_type=FORMATS[job.format].media_type,
        filename=file_name(job.format, job.created_at.date().isoformat()),
        content_disposition_type="attachment",
    )
