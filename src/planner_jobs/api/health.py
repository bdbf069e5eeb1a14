"""Probes and metrics for operators, orchestrators and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from planner_jobs.api.deps import RuntimeDep
from planner_jobs.db.engine import check_connection
from planner_jobs.db.migrate import ensure_schema_current
from planner_jobs.errors import DatabaseUnavailable

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    detail: str | None = None


_READY = {
    "response_model": Health,
    "responses": {503: {"model": Health, "description": "The database is away or not migrated"}},
}


def _ready(runtime: RuntimeDep) -> JSONResponse:
    try:
        check_connection(runtime.engine)
        ensure_schema_current(runtime.engine)
    except DatabaseUnavailable as exc:
        return JSONResponse(
            {"status": "unavailable", "detail": str(exc)},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="200 when the database answers and its schema is current", **_READY)  # type: ignore[arg-type]
def readyz(runtime: RuntimeDep) -> JSONResponse:
    return _ready(runtime)


@router.get("/healthz", summary="The same as /readyz", **_READY)  # type: ignore[arg-type]
def healthz(runtime: RuntimeDep) -> JSONResponse:
    return _ready(runtime)


@router.get("/livez", summary="200 while the process runs (the database is not asked)")
def livez() -> Health:
    return Health(status="ok")


@router.get(
    "/metrics",
    summary="Prometheus metrics: this process's counters, and the system's state",
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
