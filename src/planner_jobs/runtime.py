"""The composition root: builds every adapter once from the settings and hands them out.

Entry points (CLI commands, tests) open a `Runtime`; the worker hands it to the jobs as their
`Collaborators` (`jobs.context`), FastAPI's dependencies to the HTTP handlers. It sits above
everything it builds: nothing below imports it. Nothing here runs at import time.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from planner_jobs.catalogue import build_job_app
from planner_jobs.db.embedded import resolve_database_url
from planner_jobs.db.engine import check_connection, create_engine, libpq_url
from planner_jobs.engine.app import JobApp
from planner_jobs.engine.worker import Beside, WorkerPlan
from planner_jobs.inspection.metrics import DatabaseCollector
from planner_jobs.jobs.exports import keep_staging_clean
from planner_jobs.jobs.intake import Sources, take_in_all
from planner_jobs.jobs.intake import waiting as intake_waiting
from planner_jobs.metrics import Metrics
from planner_jobs.push.keys import load_vapid_keys
from planner_jobs.push.service import PushService
from planner_jobs.settings import Settings
from planner_jobs.storage import Storage, open_storage
from planner_jobs.storage.staging import StagingArea


@dataclass(frozen=True, kw_only=True)
class Runtime:
    settings: Settings
    database_url: str
    engine: Engine
    # The same database, directly, for what holds a session (migrations): `engine` itself
    # unless `engine` goes through PgBouncer (PLANNER_DIRECT_DATABASE_URL).
    direct_engine: Engine
    job_app: JobApp
    metrics: Metrics
    storage: Storage
    staging: StagingArea
    push: PushService
    # Set when the process is asked to stop (a signal): long tasks (the rollover sweep) end at
    # their next safe point, keeping what they did.
    stopping: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def open_runtime(
    settings: Settings, *, periodic: bool = True, pool_size: int = 5
) -> Iterator[Runtime]:
    """Connect to the database (checking that it answers) and build the adapters."""
    url = resolve_database_url(settings)
    engine = create_engine(url, pool_size=pool_size, pooled=settings.pooled)
    direct = settings.direct_database_url
    direct_engine = create_engine(direct, pool_size=1) if direct is not None else engine
    try:
        check_connection(engine)
        yield Runtime(
            settings=settings,
            database_url=url,
            engine=engine,
            direct_engine=direct_engine,
            job_app=build_job_app(
                libpq_url(url),
                periodic=periodic,
                listen_conninfo=libpq_url(direct) if direct is not None else None,
            ),
            metrics=_metrics(engine, settings),
            storage=open_storage(settings),
            staging=StagingArea(settings.data_dir / "staging"),
            push=PushService(
                load_vapid_keys(settings),
                subject=settings.vapid_subject,
                ttl=settings.push_ttl,
                allowed_hosts=settings.push_allowed_hosts,
            ),
        )
    finally:
        engine.dispose()
        direct_engine.dispose()


def _metrics(engine: Engine, settings: Settings) -> Metrics:
    """This process's counters, and the system's state read from the database at each scrape."""
    metrics = Metrics()
    metrics.registry.register(DatabaseCollector(engine, stalled_after=settings.stalled_after))
    return metrics


def beside_jobs(runtime: Runtime, plan: WorkerPlan) -> Beside:
    """What a worker of `plan` runs besides its jobs: the staging sweep of the exports queue,
    and (in burst mode) taking in what other programs raised for its queues."""
    sources = Sources.of(plan.queues)
    alongside = [functools.partial(keep_staging_clean, runtime.staging)]
    return Beside(
        alongside=alongside if "exports" in plan.queues else (),
        take_in=functools.partial(
            take_in_all, runtime.engine, runtime.job_app, sources, runtime.metrics
        )
        if sources
        else None,
        waiting=functools.partial(intake_waiting, runtime.engine, sources),
    )
