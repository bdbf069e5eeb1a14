"""The task catalogue: every job the system runs, in one list, and the job app that runs them.

Each entry says where a task runs (its queue), how it is retried, which use case runs it and,
for a periodic task, its cron and its `planner-jobs cron` subcommand, which runs the same runner
once. The catalogue stands above the use cases (`jobs/`) and the job engine (`engine/`): the one
module that knows both. The wrappers below are the one place where a task meets the worker's
`Collaborators`: each hands its use case the collaborators and the one or two settings it uses.

procrastinate defers each periodic entry once per tick across all workers (the database
deduplicates) and passes the tick as `timestamp`; the tasks act on the clock when they run, so a
run delayed behind other jobs does what is due by then (a reminder already past its grace is
skipped, not sent late). A tick can be missed (worker down, procrastinate#1495), so every periodic
task catches up from stored state instead of assuming it ran at the previous tick.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from planner_jobs.domain.notifications import AppLinks, NewNotification
from planner_jobs.domain.streaks import FreezeRules
from planner_jobs.engine import app as engine
from planner_jobs.engine import maintenance, send_jobs
from planner_jobs.engine.context import Collaborators, JobAborted, JobContext
from planner_jobs.engine.defer import defer_periodic_now
from planner_jobs.engine.queues import Queue
from planner_jobs.engine.retry import RescheduledOrBackOff
from planner_jobs.errors import UsageError
from planner_jobs.jobs import emails, exports, notifications, reminders, rollover, tokens

if TYPE_CHECKING:
    import sqlalchemy as sa

ABSORB = 500  # waiting notifications.send jobs a running one takes with it


class Summary(Protocol):
    def line(self) -> str:
        """What the run did, in one line (the task's result, the cron command's output)."""


Progress = Callable[[int], None]


@dataclass(frozen=True, kw_only=True)
class Task:
    """A task run on demand: `run(collaborators, job context, **job arguments)`, a coroutine
    function for the tasks that run on the worker's event loop."""

    name: str
    queue: Queue
    run: Callable[..., Any]
    retry: engine.Retry = False


@dataclass(frozen=True)
class Periodic:
    """A task run on a cron schedule, and by `planner-jobs cron <command>`.

    `run(collaborators, now, on_batch)` does the work due at `now`; a task that works in batches
    calls `on_batch(items)` after each, and `count_work(collaborators, now)` says how many
    items there are in all (the CLI's progress bar, labelled `progress_label`).
    """

    name: str
    cron: str
    command: str
    run: Callable[[Collaborators, dt.datetime, Progress | None], Summary]
    _: dataclasses.KW_ONLY
    takes_now: bool = True  # False: the task reads the database's clock (`--now` means nothing)
    count_work: Callable[[Collaborators, dt.datetime], int] | None = None
    progress_label: str = ""
    queue: Queue = "maintenance"

    @property
    def help(self) -> str:
        return inspect.getdoc(self.run) or self.name


# --- on demand --------------------------------------------------------------------------------


def _build_export(c: Collaborators, context: JobContext, export_id: str) -> str:
    def check() -> None:
        if context.should_abort():
            raise JobAborted("the worker is stopping: the export will be retried")

    return exports.build_export(
        c.engine,
        c.storage,
        c.metrics,
        export_id=uuid.UUID(export_id),
        attempt=context.job.attempts + 1,
        staging=c.staging,
        retention=dt.timedelta(days=c.settings.export_retention_days),
        url_ttl=dt.timedelta(seconds=c.settings.export_url_ttl),
        links=AppLinks(c.settings.app_url),
        emails=_export_emails(c),
        check=check,
    )


def _export_emails(c: Collaborators) -> emails.ExportEmails | None:
    """Whether completed exports are e-mailed: with a mail server, as PLANNER_EXPORT_EMAIL says."""
    if c.settings.smtp_server is None or c.settings.export_email == "never":
        return None
    return emails.ExportEmails(policy=c.settings.export_email, job_app=c.job_app)


async def _send_emails(c: Collaborators, context: JobContext) -> str:
    server = c.settings.smtp_server
    if server is None:
        return "no mail server (PLANNER_SMTP_URL): the waiting e-mails stay until one is set"
    sent = await emails.send_due(
        c.engine,
        server,
        sender=c.settings.sender,
        app_url=c.settings.app_url,
        metrics=c.metrics,
        pooled=c.settings.pooled,
    )
    return sent.line()


async def _send_notification(
    c: Collaborators,
    context: JobContext,
    userId: str,
    payload: dict[str, Any],
    urgency: str = "normal",
    topic: str | None = None,
    ttl: int | None = None,
    dedupeKey: str | None = None,
) -> str:
    assert context.job.id is not None  # a job being run has its row
    notification = await notifications.send_notification(
        c.job_app.connector,
        job_id=context.job.id,
        notification=NewNotification(
            user_id=uuid.UUID(userId),
            payload=payload,
            urgency=urgency,
            topic=topic,
            ttl=ttl,
            dedupe_key=dedupeKey,
        ),
    )
    # The job engine's cost per job (a few milliseconds, more than sending) is paid once per
    # batch under load: this job takes the other send jobs waiting with it.
    taken = await send_jobs.absorb_send_jobs(c.job_app, limit=ABSORB)
    return f"queued notification {notification}" + (
        f" and those of {taken} other send jobs" if taken else ""
    )


async def _deliver_notifications(
    c: Collaborators, context: JobContext, notificationIds: list[int]
) -> str:
    return await notifications.deliver(c.engine, c.push, c.metrics, notificationIds)


TASKS: tuple[Task, ...] = (
    Task(
        name="exports.build",
        run=_build_export,
        queue="exports",
        # Storage hiccups and lost connections back off (3, 9, 27, 81 s); a shutdown hands
        # the export back. Anything else fails the export at once.
        retry=engine.backoff(
            max_attempts=exports.MAX_ATTEMPTS,
            exponential_wait=3,
            retry_on=(exports.TransientFailure, JobAborted),
        ),
    ),
    Task(
        name="notifications.send",
        run=_send_notification,
        queue="notifications",
        retry=RescheduledOrBackOff(),
    ),
    Task(
        name="notifications.deliver",
        run=_deliver_notifications,
        queue="notifications",
        retry=RescheduledOrBackOff(),
    ),
    Task(
        # Every export e-mail due, over one connection to the mail server; it comes back
        # (Rescheduled) when the next waits for a retry.
        name=emails.TASK,
        run=_send_emails,
        queue="notifications",
        retry=RescheduledOrBackOff(),
    ),
)

# --- periodic ---------------------------------------------------------------------------------


def _rollover(c: Collaborators, now: dt.datetime, on_batch: Progress | None) -> Summary:
    """Close every user-day due at NOW (idempotent) and print a one-line summary."""
    return rollover.sweep(
        c.engine,
        now=now,
        default_threshold=c.settings.streak_threshold,
        freeze_rules=FreezeRules(every=c.settings.freeze_every, most=c.settings.freeze_max),
        links=AppLinks(c.settings.app_url),
        metrics=c.metrics,
        on_batch=on_batch,
        should_stop=c.stopping.is_set,
    )


def _rollover_work(c: Collaborators, now: dt.datetime) -> int:
    return rollover.count_users_with_work(c.engine, now=now)


def _reminders(c: Collaborators, now: dt.datetime, on_batch: Progress | None) -> Summary:
    """Queue the notifications of the task reminders, routine reminders and streak nudges due
    at NOW."""
    return reminders.send_reminders(
        c.engine,
        now=now,
        grace=dt.timedelta(seconds=c.settings.reminder_grace),
        links=AppLinks(c.settings.app_url),
        default_threshold=c.settings.streak_threshold,
        metrics=c.metrics,
    )


def _cleanup_tokens(c: Collaborators, now: dt.datetime, on_batch: Progress | None) -> Summary:
    """Clear the password-reset tokens that expired before NOW."""
    return tokens.cleanup_tokens(c.engine, now=now)


def _prune_notifications(c: Collaborators, now: dt.datetime, on_batch: Progress | None) -> Summary:
    """Forget the notifications of more than a week ago whose deliveries are all finished."""
    return notifications.prune_notifications(c.engine, now=now)


def _expire_exports(c: Collaborators, now: dt.datetime, on_batch: Progress | None) -> Summary:
    """Delete the export files past their retention and mark their jobs expired."""
    return exports.expire_exports(
        c.engine,
        c.storage,
        now=now,
        retention=dt.timedelta(days=c.settings.export_retention_days),
    )


def _retry_stalled(c: Collaborators, now: dt.datetime, on_batch: Progress | None) -> Summary:
    """Hand back the running jobs of workers silent for PLANNER_STALLED_AFTER seconds."""
    return maintenance.retry_stalled_jobs(c.engine, stalled_after=c.settings.stalled_after)


def _prune_jobs(c: Collaborators, now: dt.datetime, on_batch: Progress | None) -> Summary:
    """Delete the jobs that finished more than a week ago."""
    return maintenance.prune_finished_jobs(c.engine)


# The runner's docstring is the help of its `planner-jobs cron` subcommand.
PERIODIC: tuple[Periodic, ...] = (
    # task                             cron          subcommand          runner
    Periodic("rollover.sweep",         "* * * * *",  "rollover",         _rollover,
             count_work=_rollover_work, progress_label="rolling over"),
    Periodic("reminders.sweep",        "* * * * *",  "reminders",        _reminders),
    Periodic("tokens.cleanup",         "0 * * * *",  "cleanup-tokens",   _cleanup_tokens),
    Periodic("notifications.prune",    "53 3 * * *", "prune-notifications", _prune_notifications),
    Periodic("exports.expire",         "41 3 * * *", "expire-exports",   _expire_exports),
    Periodic("maintenance.retry_stalled_jobs", "* * * * *", "retry-stalled", _retry_stalled,
             takes_now=False),
    Periodic("maintenance.prune_finished_jobs", "23 4 * * *", "prune-jobs", _prune_jobs,
             takes_now=False),
)  # fmt: skip


TASK_NAMES = tuple(t.name for t in TASKS) + tuple(p.name for p in PERIODIC)


def known_task(name: str) -> str:
    """The task, or a UsageError naming the tasks there are."""
    if name not in TASK_NAMES:
        raise UsageError(f"there is no task {name!r}: the tasks are {', '.join(TASK_NAMES)}")
    return name


def periodic_named(name: str) -> Periodic:
    """The periodic task of that name, or a UsageError naming them."""
    for spec in PERIODIC:
        if spec.name == name:
            return spec
    raise UsageError(
        f"there is no periodic task {name!r}: they are {', '.join(p.name for p in PERIODIC)}"
    )


def run_now(connection: sa.Connection, spec: Periodic) -> str:
    """Queue a tick of the periodic task to run now, besides its schedule (`jobs run`, the
    dashboard's Run now); a one-line account."""
    job_id, new = defer_periodic_now(connection, task=spec.name, queue=spec.queue)
    if new:
        return f"{spec.name} is queued to run now as job {job_id}"
    return f"{spec.name} was queued to run already, as job {job_id}"


def build_job_app(
    conninfo: str, *, periodic: bool = True, listen_conninfo: str | None = None
) -> engine.JobApp:
    """The job engine's app on `conninfo` with every task of the catalogue; `periodic` adds the
    cron schedule. `listen_conninfo`: `conninfo` is PgBouncer in transaction pooling mode, and
    the workers listen on this direct connection."""
    app = engine.new_app(conninfo, listen_conninfo=listen_conninfo)
    for task in TASKS:
        engine.register(app, name=task.name, queue=task.queue, run=task.run, retry=task.retry)
    for spec in PERIODIC:
        engine.register_periodic(
            app,
            name=spec.name,
            queue=spec.queue,
            cron=spec.cron,
            run=_periodic_runner(spec),
            schedule=periodic,
        )
    return app


def _periodic_runner(spec: Periodic) -> Callable[[Collaborators, dt.datetime], str]:
    def run(collaborators: Collaborators, now: dt.datetime) -> str:
        return spec.run(collaborators, now, None).line()

    return run
