"""The workers' intake: what other programs raised, turned into jobs by the workers themselves.

The main app raises notifications (`planner_notify()`) and exports (`planner_request_export()`)
in its own transactions, which write a row and nothing else: a NOTIFY there, or the job
engine's insert trigger (which NOTIFYs), would serialize every such commit on one
database-wide lock. Instead each worker process polls the partial indexes of what waits (the
outbox's undrained notifications, the export requests without a build job), a cheap index
probe every `POLL_SECONDS` on one connection of its own, and takes in what it finds in
transactions of its own: notifications drained into deliveries and a delivery job per batch
(`jobs.outbox`), export requests given their build jobs (`jobs.exports`). Several processes
share the work (`SKIP LOCKED`). Under load, each take-in is followed by a short pause, so
batches grow and the job engine's cost per job is paid per batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import Engine

from planner_jobs.db import exports as exports_db
from planner_jobs.db import notifications as notifications_db
from planner_jobs.db.engine import connect_kwargs, driver_kwargs, first_line, libpq_url_of
from planner_jobs.engine.defer import JobApp
from planner_jobs.jobs import exports, outbox
from planner_jobs.metrics import Metrics

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # idle: one index probe this often (about 10 µs of the database's time each)
PAUSE_AFTER_WORK = 0.15  # seconds: what arrives meanwhile joins the next batch

# What waits, as the outbox and the export requests define it (one definition each).
_WAITING = {"outbox": notifications_db.ANY_WAITING, "exports": exports_db.ANY_TO_BUILD}


@dataclass(frozen=True)
class Sources:
    """What a worker process takes in: the outbox (notifications queue), export requests
    (exports queue)."""

    outbox: bool
    exports: bool

    @classmethod
    def of(cls, queues: Iterable[str]) -> Sources:
        """What workers of `queues` take in."""
        names = set(queues)
        return cls(outbox="notifications" in names, exports="exports" in names)

    def __bool__(self) -> bool:
        return self.outbox or self.exports


class Intake:
    """Polls for work raised elsewhere and takes it in, until cancelled."""

    def __init__(
        self,
        engine: Engine,
        job_app: JobApp,
        sources: Sources,
        metrics: Metrics | None = None,
        *,
        pooled: bool = False,
    ) -> None:
        self._engine = engine
        self._pooled = pooled
        self._job_app = job_app
        self._sources = sources
        self._metrics = metrics
        self._names = [name for name in _WAITING if getattr(sources, name)]
        self._probe = "SELECT " + ", ".join(f"{_WAITING[name]} AS {name}" for name in self._names)

    async def run(self) -> None:
        connection: psycopg.AsyncConnection[tuple[bool, ...]] | None = None
        try:
            while True:
                try:
                    if connection is None or connection.closed:
                        connection = await psycopg.AsyncConnection.connect(
                            make_conninfo(
                                libpq_url_of(self._engine),
                                **connect_kwargs("planner-jobs intake", pooled=self._pooled),
                            ),
                            autocommit=True,
                            **driver_kwargs(pooled=self._pooled),
                        )
                    row = await (await connection.execute(self._probe)).fetchone()
                    worked = await self._take_in(dict(zip(self._names, row or (), strict=True)))
                except (psycopg.OperationalError, sa.exc.OperationalError, OSError) as exc:
                    log.warning(
                        "the intake cannot reach the database (%s): polling again in 1 s",
                        first_line(getattr(exc, "orig", None) or exc),
                    )
                    connection = None
                    await asyncio.sleep(1)
                    continue
                except Exception:  # a drain failed: the next poll tries again
                    log.warning("could not take in the work raised", exc_info=True)
                    await asyncio.sleep(1)
                    continue
                await asyncio.sleep(PAUSE_AFTER_WORK if worked else POLL_SECONDS)
        finally:
            if connection is not None:
                await connection.close()

    async def _take_in(self, waiting: dict[str, bool]) -> bool:
        worked = False
        if waiting.get("outbox"):
            drained = await asyncio.to_thread(
                outbox.drain_all, self._engine, self._job_app, metrics=self._metrics
            )
            worked = worked or drained > 0
        if waiting.get("exports"):
            taken = await asyncio.to_thread(exports.take_in_requests, self._engine, self._job_app)
            worked = worked or taken > 0
        return worked


def take_in_all(
    engine: Engine, job_app: JobApp, sources: Sources, metrics: Metrics | None = None
) -> None:
    """Everything waiting, taken in now (a burst worker, before each pass)."""
    if sources.outbox:
        outbox.drain_all(engine, job_app, metrics=metrics)
    if sources.exports:
        while exports.take_in_requests(engine, job_app):
            pass


def waiting(engine: Engine, sources: Sources) -> bool:
    """Whether anything raised for `sources` still waits to be taken in."""
    probes = [_WAITING[name] for name in _WAITING if getattr(sources, name)]
    if not probes:
        return False
    with engine.connect() as connection:
        return bool(connection.scalar(sa.text("SELECT " + " OR ".join(probes))))
