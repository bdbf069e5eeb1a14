"""`/api/exports`: request an export, follow it, download it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse

from planner_jobs.api.auth import UNAUTHORIZED, CurrentUserId, TokenUserId
from planner_jobs.api.deps import RuntimeDep
from planner_jobs.api.export_events import ExportEvents, ExportWatch, Following
from planner_jobs.api.schemas import ExportConflictOut, ExportOut, ExportRequest, Problem
from planner_jobs.db import exports as db
from planner_jobs.domain.exports.formats import FORMATS
from planner_jobs.jobs.exports import (
    ExportConflict,
    ExportQuotaExceeded,
    download_name,
    export_json,
    request_export,
)
from planner_jobs.storage.signing import verify

if TYPE_CHECKING:
    from planner_jobs.runtime import Runtime

router = APIRouter(prefix="/api/exports", tags=["exports"])


def _out(runtime: Runtime, job: db.ExportJobRow, *, now: dt.datetime) -> dict[str, Any]:
    url_ttl = dt.timedelta(seconds=runtime.settings.export_url_ttl)
    return export_json(runtime.storage, job, now=now, url_ttl=url_ttl)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportOut,
    responses={
        **UNAUTHORIZED,
        200: {"model": ExportOut, "description": "The same export is already on its way"},
        409: {"model": ExportConflictOut, "description": "Another format is on its way"},
        429: {
            "model": Problem,
            "description": "The daily export quota is used: Retry-After says when one fits",
        },
    },
)
def create_export(
    body: ExportRequest, user_id: CurrentUserId, runtime: RuntimeDep, response: Response
) -> dict[str, Any] | JSONResponse:
    """Request an export; 202 with the new job, or 200 with the one already on its way."""
    now = dt.datetime.now(dt.UTC)
    try:
        requested = request_export(runtime.engine, user_id, body.format)
    except ExportConflict as exc:
        conflict = ExportConflictOut(
            detail=str(exc), active_export=ExportOut.model_validate(_out(runtime, exc.job, now=now))
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
    return _out(runtime, requested.job, now=now)


@router.get("", response_model=list[ExportOut], responses=UNAUTHORIZED)
def list_exports(user_id: CurrentUserId, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """The user's exports, newest first."""
    now = dt.datetime.now(dt.UTC)
    with runtime.engine.connect() as connection:
        jobs = db.list_jobs(connection, user_id)
    return [_out(runtime, job, now=now) for job in jobs]


@router.get(
    "/{export_id}", response_model=ExportOut, responses={**UNAUTHORIZED, 404: {"model": Problem}}
)
def get_export(export_id: uuid.UUID, user_id: CurrentUserId, runtime: RuntimeDep) -> dict[str, Any]:
    """One export; `downloadUrl` is freshly signed when it is complete."""
    with runtime.engine.connect() as connection:
        job = db.get_job(connection, export_id, user_id=user_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such export")
    return _out(runtime, job, now=dt.datetime.now(dt.UTC))


async def _following(
    export_id: uuid.UUID, user_id: TokenUserId, request: Request
) -> AsyncIterator[Following]:
    """The user's export and its changes, for as long as the stream lasts (404, before any
    event is sent, when the user has no such export: a deleted user's token too, whose
    exports went with them). No thread and no pooled connection is held for it."""
    watch: ExportWatch = request.app.state.export_watch
    async with watch.following(export_id, user_id=user_id) as following:
        if following is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such export")
        yield following


# The stream's refusals are JSON, as every route's (not its own media type, event-stream).
_JSON_PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@router.get(
    "/{export_id}/events",
    response_class=ExportEvents,
    status_code=status.HTTP_200_OK,
    responses={
        200: {
            "description": "The export's status events, until a final one",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        401: {"description": UNAUTHORIZED[401]["description"], "content": _JSON_PROBLEM},
        404: {"description": "No such export of the user's", "content": _JSON_PROBLEM},
    },
)
async def export_events(
    following: Annotated[Following, Depends(_following)], runtime: RuntimeDep
) -> ExportEvents:
    """Server-Sent Events: `status` with the export as `GET /api/exports/{id}` shows it, at once
    and on each change of its status; the stream ends after a final one (complete, failed,
    expired). A comment line at least every 15 s keeps it open."""
    return ExportEvents(following, lambda job: _out(runtime, job, now=_now()))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    """The file of a complete export, when the API serves the storage's downloads (local
    files): the signed link is the credential."""
    secret = runtime.settings.signing_secret.get_secret_value()
    if not verify(str(export_id), expires, signature, secret=secret, now=dt.datetime.now(dt.UTC)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the link is invalid or has expired")
    with runtime.engine.connect() as connection:
        job = db.get_job(connection, export_id)
    if job is None or job.status != "complete" or job.storage_key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this export has no file (any more)")
    path = runtime.storage.served_file(job.storage_key)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "downloads are served by the storage")
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this export has no file (any more)")
    return FileResponse(
        path,
        media_type=FORMATS[job.format].media_type,
        filename=download_name(job),
        content_disposition_type="attachment",
    )
