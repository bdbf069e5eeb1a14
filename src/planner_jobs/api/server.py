"""The HTTP API under uvicorn, for `service.serve()`, which alone decides when everything stops.

Imported only by a process that serves the API: workers and one-off commands start without
loading FastAPI and uvicorn.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from planner_jobs.api.app import create_app

if TYPE_CHECKING:
    from planner_jobs.runtime import Runtime


class ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(runtime: Runtime) -> ApiServer:
    config = uvicorn.Config(
        create_app(runtime), log_config=None, timeout_graceful_shutdown=5, server_header=False
    )
    return ApiServer(config)
