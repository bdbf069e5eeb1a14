"""The job engine's app: procrastinate on our connections, and tasks registered on it.

What a task is (its queue, retry, lock, cron, and which use case runs it) is the catalogue's
(`planner_jobs.catalogue`); this module only turns each entry into procrastinate's terms. A
task's function receives the worker's collaborators (`engine.context`) and its job context.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any

import procrastinate
from procrastinate.retry import RetryValue
from psycopg.conninfo import make_conninfo

from planner_jobs.db.engine import connect_kwargs, driver_kwargs
from planner_jobs.engine.context import Collaborators, JobContext, collaborators_of
from planner_jobs.engine.pauses import PausingJobManager
from planner_jobs.engine.pool import Connector, checked_when_idle, utc_session

JobApp = procrastinate.App
Retry = RetryValue


def backoff(
    *, max_attempts: int, exponential_wait: int, retry_on: tuple[type[Exception], ...]
) -> Retry:
    """Retry on those exceptions only, waiting `exponential_wait` ** attempt seconds."""
    return procrastinate.RetryStrategy(
        max_attempts=max_attempts,
        exponential_wait=exponential_wait,
        retry_exceptions=list(retry_on),
    )


def new_app(conninfo: str, *, listen_conninfo: str | None = None) -> JobApp:
    """An app on `conninfo`, with no task yet. `listen_conninfo`: `conninfo` is PgBouncer in
    transaction pooling mode, and the workers listen on this direct connection."""
    pooled = listen_conninfo is not None
    app = procrastinate.App(
        connector=Connector(
            listen_conninfo=listen_conninfo
            and make_conninfo(listen_conninfo, **connect_kwargs("planner-jobs listener")),
            pool_factory=checked_when_idle,
            conninfo=conninfo,
            kwargs={
                **connect_kwargs("planner-jobs worker", pooled=pooled),
                **driver_kwargs(pooled=pooled),
            },
            min_size=1,
            max_size=10,
            timeout=15,
            **({"configure": utc_session} if pooled else {}),
        )
    )
    app.job_manager = PausingJobManager(app.connector)  # before any task is registered
    return app


def register(
    app: JobApp,
    *,
    name: str,
    queue: str,
    run: Callable[..., Any],
    retry: Retry = False,
) -> None:
    """A task run on demand: `run(collaborators, job context, **job arguments)` (a coroutine
    function runs on the worker's event loop, any other on a thread)."""
    app.task(name=name, queue=queue, retry=retry, pass_context=True)(_with_collaborators(run))


def register_periodic(
    app: JobApp,
    *,
    name: str,
    queue: str,
    cron: str,
    run: Callable[[Collaborators, dt.datetime], object],
    schedule: bool,
) -> None:
    """A task run by its cron (`schedule`: the workers of this app defer its ticks, once each
    across all of them) or on demand: `run(collaborators, now)` acts on what is due at the
    clock when it runs; one tick at a time waits (the task's queueing lock)."""

    def tick(context: JobContext, timestamp: int) -> object:
        return run(collaborators_of(context), dt.datetime.now(dt.UTC))

    app.task(name=name, queue=queue, queueing_lock=name, pass_context=True)(tick)
    if schedule:
        app.periodic_registry.register_task(
            task=app.tasks[name], cron=cron, periodic_id=name, configure_kwargs={}
        )


def _with_collaborators(run: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(run):

        async def run_async(context: JobContext, **arguments: Any) -> Any:
            return await run(collaborators_of(context), context, **arguments)

        return run_async

    def run_sync(context: JobContext, **arguments: Any) -> Any:
        return run(collaborators_of(context), context, **arguments)

    return run_sync
