"""Prometheus metrics, in a registry of their own (no process-global state).

One `Metrics` object is built by the composition root and handed to whatever records.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = Counter(
            "planner_jobs_jobs_total",
            "Jobs run by this process, by task and outcome (succeeded, failed, aborted).",
            ["task", "outcome"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "planner_jobs_job_duration_seconds",
            "Wall time of the jobs run by this process.",
            ["task"],
            registry=self.registry,
            buckets=(0.005, 0.02, 0.1, 0.5, 1, 2.5, 5, 15, 60, 300, 1800),
        )
