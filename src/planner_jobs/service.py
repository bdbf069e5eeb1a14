"""The long-running parts (HTTP API, workers) in one event loop, stopped together by a signal.

SIGINT or SIGTERM asks everything to stop: the API stops accepting connections and finishes its
requests, workers let in-flight jobs finish (`SHUTDOWN_GRACE_SECONDS`, then abort them so they are
retried elsewhere). If something still hangs after `EXIT_DEADLINE_SECONDS`, the process exits
anyway: a job left behind is retried by the stalled-jobs task.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from planner_jobs.engine.worker import WorkerPlan, WorkerRunner
from planner_jobs.errors import PlannerError
from planner_jobs.jobs.intake import Intake, Sources
from planner_jobs.runtime import Runtime, beside_jobs

if TYPE_CHECKING:
    from planner_jobs.api.server import ApiServer

log = logging.getLogger(__name__)

EXIT_DEADLINE_SECONDS = 14.0


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen on host:port now, so that a port in use is a clear error before anything starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise PlannerError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def bound_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


async def serve(
    runtime: Runtime,
    *,
    api_socket: socket.socket | None = None,
    workers: Sequence[WorkerPlan] = (),
    burst: bool = False,
) -> None:
    """Run the API on `api_socket` and the `workers` until a signal (or, in burst mode, done)."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _on_signal, signum, stop_requested, runtime)
    parts: list[asyncio.Task[None]] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(runtime.push.aclose)  # the shared push HTTP client
            if workers:
                # One pool for every worker of this process.
                await stack.enter_async_context(runtime.job_app.open_async())
            server, runners, parts = _start_parts(runtime, api_socket, workers, burst)
            intake = _start_intake(runtime, workers) if not burst else None
            try:
                await _wait_for_end(parts, stop_requested, burst=burst)
            finally:
                await _stop(server, runners, parts)
                if intake is not None:
                    intake.cancel()
                    await asyncio.gather(intake, return_exceptions=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    for part in parts:
        if not part.cancelled() and (error := part.exception()) is not None:
            raise error


def _start_parts(
    runtime: Runtime,
    api_socket: socket.socket | None,
    workers: Sequence[WorkerPlan],
    burst: bool,
) -> tuple[ApiServer | None, list[WorkerRunner], list[asyncio.Task[None]]]:
    server = None
    runners = []
    parts = []
    if api_socket is not None:
        from planner_jobs.api.admin import closed_because  # only where the API is served
        from planner_jobs.api.server import api_server

        server = api_server(runtime)
        parts.append(asyncio.create_task(server.serve(sockets=[api_socket]), name="api"))
        log.info("HTTP API listening on %s", bound_address(api_socket))
        if (why := closed_because(runtime.settings)) is not None:
            log.warning(why)
    for plan in workers:
        runner = WorkerRunner(runtime, plan, burst=burst, beside=beside_jobs(runtime, plan))
        runners.append(runner)
        parts.append(asyncio.create_task(runner.run(), name="worker " + ",".join(plan.queues)))
    return server, runners, parts


def _start_intake(runtime: Runtime, workers: Sequence[WorkerPlan]) -> asyncio.Task[None] | None:
    """The process's one intake (`jobs.intake`: one polling connection, whatever the number of
    workers), for what its workers' queues take in from other programs."""
    sources = Sources.of(queue for plan in workers for queue in plan.queues)
    if not sources:
        return None
    intake = Intake(
        runtime.engine,
        runtime.job_app,
        sources,
        runtime.metrics,
        pooled=runtime.settings.pooled,
    )
    return asyncio.create_task(intake.run(), name="intake")


async def _wait_for_end(
    parts: list[asyncio.Task[None]], stop_requested: asyncio.Event, *, burst: bool
) -> None:
    """Until a signal, a part failing, or (burst) every part done; a server never ends alone."""
    waiter = asyncio.create_task(stop_requested.wait())
    running: set[asyncio.Task[Any]] = set(parts)
    try:
        while running:
            done, running = await asyncio.wait(
                [*running, waiter], return_when=asyncio.FIRST_COMPLETED
            )
            running.discard(waiter)
            if waiter in done or not burst:
                return
            if any(part.exception() is not None for part in done):
                return
    finally:
        waiter.cancel()


def _on_signal(signum: int, stop_requested: asyncio.Event, runtime: Runtime) -> None:
    if stop_requested.is_set():
        log.warning("second %s: exiting now", signal.Signals(signum).name)
        os._exit(128 + signum)
    log.info(
        "%s received: stopping (in-flight jobs get time to finish)", signal.Signals(signum).name
    )
    runtime.stopping.set()  # a sweep running in a job's thread stops between its batches
    stop_requested.set()


async def _stop(
    server: ApiServer | None, runners: list[WorkerRunner], parts: list[asyncio.Task[Any]]
) -> None:
    if server is not None:
        server.should_exit = True
    for runner in runners:
        runner.stop()
    _, pending = await asyncio.wait(parts, timeout=EXIT_DEADLINE_SECONDS) if parts else ((), ())
    if pending:
        log.error(
            "still busy %.0f s after the stop request: exiting anyway "
            "(unfinished jobs will be retried)",
            EXIT_DEADLINE_SECONDS,
        )
        logging.shutdown()
        os._exit(1)
