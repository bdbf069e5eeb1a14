"""What operators look at and act on: `status`, `jobs`, `exports show`, and `token` (development).

Each command reads the inspection room's views (`planner_jobs.inspection`) and prints them for
people, or as JSON with `--json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from planner_jobs.cli.main import (
    Instant,
    development_only,
    migrated_runtime,
    settings_of_command,
)
from planner_jobs.engine.queues import STATUSES
from planner_jobs.errors import PlannerError, UsageError
from planner_jobs.inspection.text import ago, duration

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from planner_jobs.engine.actions import Bulk
    from planner_jobs.engine.views import JobFilter
    from planner_jobs.settings import Settings


@contextlib.contextmanager
def _database(settings: Settings | None = None) -> Iterator[Engine]:
    from planner_jobs.inspection.database import open_database

    with open_database(settings or settings_of_command()) as engine:
        yield engine


JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> None:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo(
            indent
            + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


# --- status -----------------------------------------------------------------------------------


@click.command()
@JSON
def status(as_json: bool) -> None:
    """One screen: database, queues, workers, schedule, rollover, exports, pushes."""
    from planner_jobs.inspection import views
    from planner_jobs.inspection.database import redacted

    settings = settings_of_command()
    with _database(settings) as engine, engine.connect() as connection:
        seen = views.status(connection, stalled_after=settings.stalled_after)
        database = redacted(engine.url)
    if as_json:
        _echo_json({"database": database, **seen.as_json()})
        return
    now = seen.now
    click.echo(f"database   {database}  schema {seen.revision} (current)")
    click.echo("queues")
    _table(
        ["queue", "todo", "oldest ready", "doing", "failed", "cancelled", "aborted", "done 1h"],
        [
            [
                q.name + (" (paused)" if q.paused else ""),
                q.counts["todo"],
                duration(q.oldest_ready_seconds),
                q.counts["doing"],
                q.counts["failed"],
                q.counts["cancelled"],
                q.counts["aborted"],
                q.counts["succeeded"],
            ]
            for q in seen.queues
        ],
    )
    alive = [w for w in seen.workers if w.alive]
    click.echo(
        f"workers    {len(alive)} alive, {len(seen.workers) - len(alive)} silent;"
        f" {sum(w.running for w in alive)} jobs running"
    )
    click.echo("schedule")
    _table(
        ["task", "cron", "last tick", "next tick", "last success"],
        [
            [
                e.task,
                e.cron,
                ago(e.last_tick, now),
                ago(e.next_tick, now),
                ago(e.last_success, now),
            ]
            for e in seen.schedule
        ],
    )
    r = seen.rollover
    click.echo(
        f"rollover   lag {duration(r.lag_seconds)}, {r.users_due} users due,"
        f" {r.users_backing_off} backing off"
        + (f" (last error: {r.last_error})" if r.last_error else "")
    )
    s = seen.export_schedules
    click.echo(
        "exports    "
        + ", ".join(f"{k} {v}" for k, v in seen.exports.items())
        + f"; {s.schedules} schedules ({s.due} waiting for an active export)"
    )
    h = seen.last_hour
    click.echo(
        f"last hour  {h['user_days_closed']} user-days closed, {h['reminders_sent']} reminders"
        f" sent, {h['pushes_delivered']} pushes delivered"
    )
    d = seen.deliveries
    click.echo(
        f"pushes     {d.outbox} notifications to drain, {d.due} deliveries due,"
        f" {d.waiting} waiting" + (f" (next {ago(d.next_at, now)})" if d.next_at else "")
    )


# --- jobs -------------------------------------------------------------------------------------


@click.group(name="jobs")
def jobs_group() -> None:
    """Inspect and act on the job engine's jobs."""


@jobs_group.command(name="queues")
@JSON
def jobs_queues(as_json: bool) -> None:
    """Each queue: jobs by status and the age of its oldest ready job."""
    from planner_jobs.inspection import views

    with _database() as engine, engine.connect() as c:
        queues = views.queues(c)
    if as_json:
        _echo_json(views.as_json(queues))
        return
    _table(
        ["queue", *queues[0].counts, "oldest ready", "state"] if queues else ["queue"],
        [
            [
                q.name,
                *q.counts.values(),
                duration(q.oldest_ready_seconds),
                "paused" if q.paused else "running",
            ]
            for q in queues
        ],
        indent="",
    )


STATUS_CHOICE = click.Choice(STATUSES)


def _filter(
    queue: str | None,
    task: str | None,
    user: uuid.UUID | None,
    since: dt.datetime | None,
    status: str | None = None,
) -> JobFilter:
    """The filters as given, a queue or task that does not exist refused (it would select
    nothing, which reads as "all is well")."""
    from planner_jobs.catalogue import known_task
    from planner_jobs.engine.queues import known_queue
    from planner_jobs.engine.views import JobFilter

    if queue is not None:
        known_queue(queue)
    if task is not None:
        known_task(task)
    return JobFilter(queue=queue, task=task, status=status, user=user, since=since)


QUEUE = click.option("--queue", default=None, help="Only this queue's jobs.")
TASK = click.option("--task", default=None, help="Only this task's jobs (rollover.sweep, ...).")
USER = click.option(
    "--user", type=click.UUID, default=None,
    help="Only the jobs about this user (their notifications and exports).",
)  # fmt: skip
SINCE = click.option("--since", type=Instant(), default=None, help="Queued at or after (ISO 8601).")


@jobs_group.command(name="list")
@QUEUE
@TASK
@click.option("--status", "status_", type=STATUS_CHOICE, default=None, help="Only jobs in it.")
@USER
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", type=int, default=None, help="Older than this job id (next page).")
@SINCE
@JSON
def jobs_list(
    queue: str | None,
    task: str | None,
    status_: str | None,
    user: uuid.UUID | None,
    limit: int,
    before: int | None,
    since: dt.datetime | None,
    as_json: bool,
) -> None:
    """Jobs, newest first."""
    from planner_jobs.inspection import views

    selection = _filter(queue, task, user, since, status_)
    with _database() as engine, engine.connect() as c:
        found = views.jobs(c, before=before, limit=limit, **dataclasses.asdict(selection))
        now = views.database_now(c)
    if as_json:
        _echo_json(views.as_json(found))
        return
    _table(
        ["id", "queue", "task", "status", "attempts", "queued", "last change"],
        [
            [
                j.id,
                j.queue,
                j.task,
                j.status,
                j.attempts,
                ago(j.queued_at, now),
                ago(j.updated_at, now),
            ]
            for j in found
        ],
        indent="",
    )
    if len(found) == limit:
        click.echo(f"(more: --before {found[-1].id})")


@jobs_group.command(name="show")
@click.argument("job_id", type=int)
@JSON
def jobs_show(job_id: int, as_json: bool) -> None:
    """A job's arguments, every event with its time, and its failures (with tracebacks)."""
    from planner_jobs.inspection import views

    settings = settings_of_command()
    with _database(settings) as engine, engine.connect() as c:
        detail = views.job(c, job_id, stalled_after=settings.stalled_after)
    if detail is None:
        raise UsageError(f"there is no job {job_id}")
    if as_json:
        _echo_json(views.as_json(detail))
        return
    j = detail.job
    state = j.status + (" (stalled: its worker stopped answering)" if detail.stalled else "")
    click.echo(f"job {j.id}  {j.task}  queue {j.queue}  {state}  attempts {j.attempts}")
    if j.scheduled_at:
        click.echo(f"scheduled  {j.scheduled_at.isoformat()}")
    if j.lock or j.queueing_lock:
        click.echo(f"locks      lock={j.lock} queueing_lock={j.queueing_lock}")
    click.echo("args       " + json.dumps(detail.args, ensure_ascii=False))
    click.echo("events")
    for event in detail.events:
        click.echo(f"  {event.at.isoformat()}  {event.type}")
    for failure in detail.failures:
        click.echo(
            f"failure of attempt {failure.attempt} at {failure.failed_at.isoformat()}"
            f" (worker {failure.worker_id}): {failure.exception}: {failure.message}"
        )
        click.echo("  " + failure.traceback.rstrip().replace("\n", "\n  "))


def _act(job_id: int, as_json: bool, action: Callable[[Any, int], str]) -> None:
    from planner_jobs.engine.actions import JobActionRefused

    with _database() as engine, engine.begin() as c:
        try:
            done = action(c, job_id)
        except JobActionRefused as exc:
            raise PlannerError(str(exc)) from None
    _echo_json({"job": job_id, "done": done}) if as_json else click.echo(done)


def _bulk(
    job_id: int | None,
    every: bool,
    selection: JobFilter,
    as_json: bool,
    one: Callable[[Any, int], str],
    many: Callable[[Any, JobFilter], Bulk],
) -> None:
    if every == (job_id is not None):
        raise UsageError("give one job ID, or --all (with filters) for every job they select")
    if job_id is not None:
        if any(dataclasses.astuple(selection)):
            raise UsageError("the filters go with --all, not with a job ID")
        _act(job_id, as_json, one)
        return
    with _database() as engine, engine.begin() as c:
        done = many(c, selection)
    if as_json:
        _echo_json({"done": done.done, "skipped": done.skipped})
    else:
        click.echo(done.line())


@jobs_group.command(name="retry")
@click.argument("job_id", type=int, required=False)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Every failed, cancelled, aborted or stalled job the filters select.",
)
@QUEUE
@TASK
@USER
@SINCE
@JSON
def jobs_retry(
    job_id: int | None,
    every: bool,
    queue: str | None,
    task: str | None,
    user: uuid.UUID | None,
    since: dt.datetime | None,
    as_json: bool,
) -> None:
    """Put a failed, cancelled, aborted or stalled job back in its queue, to run now; with
    --all, every such job the filters select, in one transaction."""
    from planner_jobs.engine import actions

    stalled_after = settings_of_command().stalled_after
    _bulk(
        job_id,
        every,
        _filter(queue, task, user, since),
        as_json,
        lambda c, i: actions.retry(c, i, stalled_after=stalled_after),
        lambda c, f: actions.retry_all(c, f, stalled_after=stalled_after),
    )


@jobs_group.command(name="cancel")
@click.argument("job_id", type=int, required=False)
@click.option(
    "--all", "every", is_flag=True, help="Every job the filters select that has not started."
)
@QUEUE
@TASK
@USER
@SINCE
@JSON
def jobs_cancel(
    job_id: int | None,
    every: bool,
    queue: str | None,
    task: str | None,
    user: uuid.UUID | None,
    since: dt.datetime | None,
    as_json: bool,
) -> None:
    """Cancel a job that has not started; with --all, every such job the filters select, in one
    transaction."""
    from planner_jobs.engine import actions

    _bulk(
        job_id,
        every,
        _filter(queue, task, user, since),
        as_json,
        actions.cancel,
        actions.cancel_all,
    )


def _pause_or_resume(queue: str, *, pause: bool) -> None:
    from planner_jobs.engine import pauses
    from planner_jobs.engine.queues import known_queue

    known_queue(queue)  # before opening the database
    with _database() as engine, engine.begin() as c:
        click.echo((pauses.pause if pause else pauses.resume)(c, queue))


@jobs_group.command(name="pause")
@click.argument("queue")
def jobs_pause(queue: str) -> None:
    """Workers take no new job from QUEUE (within 2 s, on every machine) until it is resumed."""
    _pause_or_resume(queue, pause=True)


@jobs_group.command(name="resume")
@click.argument("queue")
def jobs_resume(queue: str) -> None:
    """Workers take the jobs of a paused QUEUE again."""
    _pause_or_resume(queue, pause=False)


@jobs_group.command(name="run")
@click.argument("task")
def jobs_run(task: str) -> None:
    """Queue the periodic TASK (a name from `jobs schedule`) to run now, once, besides its
    schedule."""
    from planner_jobs.catalogue import periodic_named, run_now

    spec = periodic_named(task)
    with _database() as engine, engine.begin() as c:
        click.echo(run_now(c, spec))


@jobs_group.command(name="schedule")
@JSON
def jobs_schedule(as_json: bool) -> None:
    """Each periodic task: its cron, its last and next tick, its last success."""
    from planner_jobs.inspection import views

    with _database() as engine, engine.connect() as c:
        now = views.database_now(c)
        entries = views.schedule(c, now=now)
    if as_json:
        _echo_json(views.as_json(entries))
        return
    _table(
        ["task", "cron", "cron command", "last tick", "next tick", "last success"],
        [
            [
                e.task,
                e.cron,
                e.command,
                ago(e.last_tick, now),
                ago(e.next_tick, now),
                ago(e.last_success, now),
            ]
            for e in entries
        ],
        indent="",
    )


# --- exports ----------------------------------------------------------------------------------


@click.group(name="exports")
def exports_group() -> None:
    """Inspect export jobs."""


@exports_group.command(name="show")
@click.argument("export_id", type=click.UUID)
@JSON
def exports_show(export_id: uuid.UUID, as_json: bool) -> None:
    """An export job as the API shows it, with a fresh download link when complete."""
    from planner_jobs.jobs.exports import describe

    settings = settings_of_command()
    with migrated_runtime(settings) as runtime:
        shown = describe(
            runtime.engine, runtime.storage, export_id, url_ttl=settings.export_url_ttl
        )
    if shown is None:
        raise UsageError(f"there is no export {export_id}")
    if as_json:
        _echo_json(shown)
        return
    for key, value in shown.items():
        click.echo(f"{key:<12} {'-' if value is None else value}")


# --- token ------------------------------------------------------------------------------------


@click.command()
@click.argument("user_id", type=click.UUID)
@click.option(
    "--ttl", type=click.IntRange(1, 31 * 86400), default=3600, show_default=True,
    help="Seconds the token is valid.",
)  # fmt: skip
def token(user_id: uuid.UUID, ttl: int) -> None:
    """Development only: print a bearer token for USER_ID, as the main app would issue it."""
    import jwt

    settings = development_only()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "exp": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl),
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    click.echo(jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256"))
