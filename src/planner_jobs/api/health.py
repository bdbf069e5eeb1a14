"""Liveness and metrics endpoints for operators and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from planner_jobs.api.deps import RuntimeDep
from planner_jobs.db.engine import check_connection
from planner_jobs.errors import DatabaseUnavailable

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    detail: str | None = None


@router.get(
    "/healthz",
    summary="200 when the database answers, else 503",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
def healthz(runtime: RuntimeDep) -> JSONResponse:
    try:
        check_connection(runtime.engine)
    except DatabaseUnavailable as exc:
        return JSONResponse(
            {"status": "unavailable", "detail": str(exc)},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"status": "ok"})


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(runtime: RuntimeDep) -> Response:
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
