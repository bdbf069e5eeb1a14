"""The procrastinate app: queues, the task catalogue and the builder the composition root calls.

Tasks are plain functions in the modules of this package, registered here by name so that a reader
sees every job the system runs in one list. Each receives the procrastinate `JobContext`; the
`Runtime` (engine, settings, adapters) travels in its `additional_context` (`jobs.context`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import procrastinate
from procrastinate.exceptions import JobAborted
from procrastinate.retry import RetryValue

from planner_jobs.db.engine import connect_kwargs
from planner_jobs.jobs import exports, maintenance, notifications, rollover, tokens
from planner_jobs.jobs.schedule import SCHEDULE

Queue = Literal["exports", "notifications", "maintenance"]
QUEUES: tuple[Queue, ...] = ("exports", "notifications", "maintenance")


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    name: str
    func: Callable[..., Any]
    queue: Queue
    retry: RetryValue = False
    queueing_lock: str | None = None
    priority: int = 0


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="exports.build",
        func=exports.build_export,
        queue="exports",
        # Storage hiccups and lost connections back off (3, 9, 27, 81 s); a shutdown hands
        # the export back. Anything else fails the export at once.
        retry=procrastinate.RetryStrategy(
            max_attempts=exports.MAX_ATTEMPTS,
            exponential_wait=3,
            retry_exceptions=[exports.TransientFailure, JobAborted],
        ),
    ),
    TaskSpec(
        name="notifications.send",
        func=notifications.send_notification,
        queue="notifications",
        retry=notifications.NotificationRetry(),
    ),
    TaskSpec(
        name="notifications.deliver",
        func=notifications.deliver_notifications,
        queue="notifications",
        retry=notifications.NotificationRetry(),
    ),
    TaskSpec(
        name="reminders.sweep",
        func=notifications.reminders_task,
        queue="maintenance",
        queueing_lock="reminders.sweep",
    ),
    TaskSpec(
        name="notifications.prune",
        func=notifications.prune_deliveries_task,
        queue="maintenance",
        queueing_lock="notifications.prune",
    ),
    TaskSpec(
        name="exports.expire",
        func=exports.expire_exports_task,
        queue="maintenance",
        queueing_lock="exports.expire",
    ),
    TaskSpec(
        name="rollover.sweep",
        func=rollover.rollover_sweep,
        queue="maintenance",
        queueing_lock="rollover.sweep",
    ),
    TaskSpec(
        name="tokens.cleanup",
        func=tokens.cleanup_tokens_task,
        queue="maintenance",
        queueing_lock="tokens.cleanup",
    ),
    TaskSpec(
        name="maintenance.retry_stalled_jobs",
        func=maintenance.retry_stalled_jobs,
        queue="maintenance",
        queueing_lock="maintenance.retry_stalled_jobs",
    ),
    TaskSpec(
        name="maintenance.prune_finished_jobs",
        func=maintenance.prune_finished_jobs,
        queue="maintenance",
        queueing_lock="maintenance.prune_finished_jobs",
    ),
)


def build_job_app(conninfo: str, *, periodic: bool = True) -> procrastinate.App:
    """A procrastinate app on `conninfo` with every task; `periodic` adds the cron schedule."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo,
            kwargs=connect_kwargs("planner-jobs worker"),
            min_size=1,
            max_size=10,
            timeout=15,
        )
    )
    for spec in TASKS:
        app.task(
            name=spec.name,
            queue=spec.queue,
            retry=spec.retry,
            queueing_lock=spec.queueing_lock,
            priority=spec.priority,
            pass_context=True,
        )(spec.func)
    if periodic:
        for entry in SCHEDULE:
            app.periodic_registry.register_task(
                task=app.tasks[entry.task],
                cron=entry.cron,
                periodic_id=entry.task,
                configure_kwargs={},
            )
    return app
