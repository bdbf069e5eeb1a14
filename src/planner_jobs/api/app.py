"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from planner_jobs import __version__
from planner_jobs.api import admin, exports, health, internal, push
from planner_jobs.api.export_events import ExportWatch
from planner_jobs.db.engine import libpq_url_of

if TYPE_CHECKING:
    from planner_jobs.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    """The HTTP API over `runtime`'s adapters; no state outside the returned app."""
    watch = ExportWatch(libpq_url_of(runtime.direct_engine))
    runtime.metrics.export_event_streams.set_function(lambda: watch.streams)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await watch.close()

    app = FastAPI(
        lifespan=lifespan,
        title="planner-jobs",
        version=__version__,
        description="Exports, push subscriptions and operations of the Proactive Planner's jobs.",
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime
    app.state.export_watch = watch  # one LISTEN connection for every export event stream
    app.include_router(health.router)
    app.include_router(exports.router)
    app.include_router(push.router)
    app.include_router(internal.router)
    app.include_router(admin.router)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    return app


def _for_people(request: Request) -> bool:
    """The dashboard's pages answer errors as pages; the API answers JSON."""
    return request.url.path == "/admin" or request.url.path.startswith("/admin/")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """FastAPI answers 400 to a body it cannot decode (not UTF-8, say); to a client that is
    malformed input like any other: 422 naming the body."""
    if _for_people(request):
        return admin.error_page(request, exc.status_code, str(exc.detail), exc.headers)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        error = {"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}
        return JSONResponse(
            {"message": f"body: {exc.detail}", "detail": [error]},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return await http_exception_handler(request, exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    """422 whose `message` names each bad field (`format: Input should be ...`)."""
    errors = exc.errors()
    messages = []
    for error in errors:
        field = ".".join(
            str(part) for part in error["loc"] if part not in ("body", "query", "path")
        )
        messages.append(f"{field or 'body'}: {error['msg']}")
    if _for_people(request):
        return admin.error_page(
            request, status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(messages), None
        )
    return JSONResponse(
        {"message": "; ".join(messages), "detail": jsonable_encoder(errors)},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
