"""The metrics read from the database at each scrape: the same views operators see.

Whichever process serves `/metrics` reports the whole system's queues, workers, schedule and
rollover lag, not only its own. A database that does not answer leaves these families out of
that scrape (logged), never fails it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from planner_jobs import __version__
from planner_jobs.db.engine import first_line
from planner_jobs.inspection import views

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_MS = 2000  # a scrape never waits longer than this on the database


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine, *, stalled_after: float) -> None:
        self._engine = engine
        self._stalled_after = stalled_after

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # read at scrape time: nothing to describe ahead

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        yield InfoMetricFamily(
            "planner_jobs_build", "The version of planner-jobs.", value={"version": __version__}
        )
        try:
            families = self._read()
        except Exception as exc:  # the database is away: this scrape goes without these
            log.warning("metrics from the database left out of this scrape: %s", first_line(exc))
            return
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        with self._engine.connect() as connection:
            connection.exec_driver_sql(f"SET statement_timeout = {SCRAPE_TIMEOUT_MS}")
            try:
                queues = views.queues(connection)
                workers = views.workers(connection, stalled_after=self._stalled_after)
                now = views.database_now(connection)
                schedule = views.schedule(connection, now=now)
                rollover = views.rollover(connection)
                deliveries = views.deliveries(connection)
            finally:
                connection.exec_driver_sql("RESET statement_timeout")
        jobs = GaugeMetricFamily(
            "planner_jobs_queue_jobs",
            "Jobs kept in each queue by status (succeeded: finished in the last hour).",
            labels=["queue", "status"],
        )
        oldest = GaugeMetricFamily(
            "planner_jobs_queue_oldest_ready_age_seconds",
            "How long the oldest job ready to run in each queue has waited (0: none waits).",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "planner_jobs_queue_paused",
            "1 while an operator has paused the queue (planner-jobs jobs pause), else 0.",
            labels=["queue"],
        )
        for queue in queues:
            for status, count in queue.counts.items():
                jobs.add_metric([queue.name, status], count)
            oldest.add_metric([queue.name], queue.oldest_ready_seconds or 0.0)
            paused.add_metric([queue.name], 1.0 if queue.paused else 0.0)
        alive = GaugeMetricFamily(
            "planner_jobs_workers", "Workers whose heartbeat is recent (PLANNER_STALLED_AFTER)."
        )
        alive.add_metric([], sum(1 for worker in workers if worker.alive))
        success = GaugeMetricFamily(
            "planner_jobs_periodic_last_success_timestamp_seconds",
            "When each periodic task last succeeded (Unix time; absent: not yet).",
            labels=["task"],
        )
        for entry in schedule:
            if entry.last_success is not None:
                success.add_metric([entry.task], entry.last_success.timestamp())
        lag = GaugeMetricFamily(
            "planner_jobs_rollover_lag_seconds",
            "Age of the oldest user-day that is due and not closed yet.",
        )
        lag.add_metric([], rollover.lag_seconds)
        backing_off = GaugeMetricFamily(
            "planner_jobs_rollover_users_backing_off",
            "Users whose rollover failed on their own data, waiting to be retried.",
        )
        backing_off.add_metric([], rollover.users_backing_off)
        due = GaugeMetricFamily(
            "planner_jobs_rollover_users_due",
            "Users with rollover work now: a day to close, or not planned yet.",
        )
        due.add_metric([], rollover.users_due)
        outbox = GaugeMetricFamily(
            "planner_jobs_outbox_waiting",
            "Notifications raised and not yet drained into deliveries.",
        )
        outbox.add_metric([], deliveries.outbox)
        return [jobs, oldest, paused, alive, success, lag, backing_off, due, outbox]
