"""The FastAPI application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from planner_jobs import __version__
from planner_jobs.api import exports, health, push

if TYPE_CHECKING:
    from planner_jobs.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    """The HTTP API over `runtime`'s adapters; no state outside the returned app."""
    app = FastAPI(
        title="planner-jobs",
        version=__version__,
        description="Exports, push subscriptions and operations of the Proactive Planner's jobs.",
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime
    app.include_router(health.router)
    app.include_router(exports.router)
    app.include_router(push.router)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    return app


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 whose `message` names each bad field (`format: Input should be ...`)."""
    errors = exc.errors()
    messages = []
    for error in errors:
        field = ".".join(
            str(part) for part in error["loc"] if part not in ("body", "query", "path")
        )
        messages.append(f"{field or 'body'}: {error['msg']}")
    return JSONResponse(
        {"message": "; ".join(messages), "detail": jsonable_encoder(errors)},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
