"""Prometheus metrics, in a registry of their own (no process-global state).

One `Metrics` object is built by the composition root and handed to whatever records.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.job_wait = Histogram(
            "planner_jobs_job_wait_seconds",
            "Time a job waited to start since it was ready to run (queued, or scheduled).",
            ["queue"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600),
        )
        self.emails = Counter(
            "planner_jobs_emails_total",
            "E-mails this process tried to send, by outcome (sent; retry: a temporary failure,"
            " tried again later; failed: refused for good, or given up).",
            ["outcome"],
            registry=self.registry,
        )
        self.export_event_streams = Gauge(
            "planner_jobs_export_event_streams",
            "Export event streams (GET /api/exports/{id}/events) open on this API process.",
            registry=self.registry,
        )
        self.rollover_user_days = Counter(
            "planner_jobs_rollover_user_days_closed_total",
            "User-days closed by the rollover (one performance-history row each).",
            registry=self.registry,
        )
        self.rollover_seconds = Histogram(
            "planner_jobs_rollover_sweep_duration_seconds",
            "Wall time of a rollover sweep.",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.25, 1, 5, 15, 60, 300, 1800),
        )
        self.rollover_failures = Counter(
            "planner_jobs_rollover_failures_total",
            "Users whose rollover failed on their own data (retried 10 minutes later).",
            registry=self.registry,
        )
        self.rollover_unknown_zones = Counter(
            "planner_jobs_rollover_unknown_zone_users_total",
            "Users rolled over in UTC because their time zone is not an IANA name.",
            registry=self.registry,
        )
        self.rollover_streak_effects = Counter(
            "planner_jobs_rollover_streak_effects_total",
            "User-days closed, by what closing them did to the streak (extended, vacation,"
            " day_off, freeze, reset).",
            ["effect"],
            registry=self.registry,
        )
        self.push_held = Counter(
            "planner_jobs_push_held_total",
            "Push deliveries held until the end of their user's quiet hours.",
            registry=self.registry,
        )
        self.exports = Counter(
            "planner_jobs_exports_total",
            "Exports finished, by format and outcome (complete, failed).",
            ["format", "outcome"],
            registry=self.registry,
        )
        self.export_seconds = Histogram(
            "planner_jobs_export_duration_seconds",
            "Time to build and store an export.",
            ["format"],
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 2.5, 5, 15, 60, 300, 900),
        )
        self.pushes = Counter(
            "planner_jobs_pushes_total",
            "Push requests, by outcome, HTTP status ('none': no answer) and push-service host.",
            ["outcome", "status", "host"],
            registry=self.registry,
        )
        self.push_seconds = Histogram(
            "planner_jobs_push_duration_seconds",
            "Time for a push service to answer.",
            ["host"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.subscriptions_deleted = Counter(
            "planner_jobs_push_subscriptions_deleted_total",
            "Subscriptions deleted because their push service reported them gone (404/410).",
            registry=self.registry,
        )
        self.reminders = Counter(
            "planner_jobs_reminders_total",
            "Task reminders, sent (queued) or skipped (too late).",
            ["result"],
            registry=self.registry,
        )
        self.export_bytes = Counter(
            "planner_jobs_export_bytes_total",
            "Bytes of export files stored.",
            ["format"],
            registry=self.registry,
        )
