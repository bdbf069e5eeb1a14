"""The `planner-jobs` command line.

Every command exits 0 on success; an expected failure (bad argument or setting, database
unreachable, port in use) is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

import click

from planner_jobs import __version__
from planner_jobs.db.migrate import ensure_schema_current, migrate
from planner_jobs.errors import PlannerError
from planner_jobs.jobs.app import QUEUES
from planner_jobs.jobs.worker import WorkerPlan
from planner_jobs.runtime import open_runtime
from planner_jobs.service import bind_socket, serve
from planner_jobs.settings import Settings, load_settings

# What `planner-jobs run` starts: a worker per queue, so a long export never delays a reminder.
RUN_WORKERS = (
    WorkerPlan(queues=("notifications",), concurrency=8),
    WorkerPlan(queues=("exports",), concurrency=2),
    WorkerPlan(queues=("maintenance",), concurrency=2),
)


def _settings() -> Settings:
    """The settings, read once per invocation (not at import, not for `--help`)."""
    context = click.get_current_context()
    settings = context.meta.get("planner.settings")
    if settings is None:
        settings = load_settings()
        context.meta["planner.settings"] = settings
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        for noisy in ("alembic.runtime.migration", "procrastinate.blueprints"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="planner-jobs")
def cli() -> None:
    """planner-jobs: the Proactive Planner's background jobs.

    Settings come from PLANNER_* environment variables (or a .env file); with no
    PLANNER_DATABASE_URL an embedded PostgreSQL is started in $PLANNER_DATA_DIR/pg.
    """


@cli.command()
def run() -> None:
    """Everything on one machine: migrate, HTTP API, workers for every queue, the cron schedule.

    Ctrl-C or SIGTERM stops it gracefully.
    """
    settings = _settings()
    sock = bind_socket(settings.host, settings.port)
    with open_runtime(settings) as runtime:
        logging.getLogger("planner_jobs").info(migrate(runtime.engine).summary())
        asyncio.run(serve(runtime, api_socket=sock, workers=RUN_WORKERS))


@cli.command(name="migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (idempotent)."""
    with open_runtime(_settings(), periodic=False) as runtime:
        click.echo(migrate(runtime.engine).summary())


@cli.command()
def api() -> None:
    """The HTTP API alone."""
    settings = _settings()
    sock = bind_socket(settings.host, settings.port)
    with open_runtime(settings, periodic=False) as runtime:
        ensure_schema_current(runtime.engine)
        asyncio.run(serve(runtime, api_socket=sock))


@cli.command()
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(QUEUES),
    help="A queue to work on (repeat for several; default: all).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Jobs run at the same time.",
)
@click.option("--burst", is_flag=True, help="Exit 0 once no job in the queues is ready.")
def worker(queues: Sequence[str], concurrency: int, burst: bool) -> None:
    """Job workers (any number of them, on any number of machines)."""
    # Burst runs are one-off catch-ups: they do not schedule the periodic tasks.
    with open_runtime(_settings(), periodic=not burst) as runtime:
        ensure_schema_current(runtime.engine)
        plan = WorkerPlan(queues=tuple(queues) or QUEUES, concurrency=concurrency)
        asyncio.run(serve(runtime, workers=[plan], burst=burst))


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn expected failures into one line."""
    try:
        code = cli.main(args=argv, prog_name="planner-jobs", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help(), err=True)
        code = 2
    except click.UsageError as exc:
        _fail(exc.format_message(), code=exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), code=exc.exit_code)
    except click.Abort:
        _fail("aborted", code=130)
    except PlannerError as exc:
        _fail(str(exc), code=1)
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, *, code: int) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    click.echo(f"planner-jobs: error: {first_line}", err=True)
    sys.exit(code)
