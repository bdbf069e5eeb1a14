"""The `planner-jobs` command line.

Every command exits 0 on success; an expected failure (bad argument or setting, database
unreachable, port in use) is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from planner_jobs import __version__
from planner_jobs.domain.exports.formats import FORMAT_NAMES
from planner_jobs.domain.push import URGENCIES
from planner_jobs.engine.queues import QUEUES
from planner_jobs.errors import PlannerError, UsageError

if TYPE_CHECKING:
    from planner_jobs.catalogue import Periodic
    from planner_jobs.runtime import Runtime
    from planner_jobs.settings import Settings

# Each command imports what it uses: `planner-jobs status` or `--help` does not load the job
# engine, the push service or the migrations (on a small machine, a second of imports).


def settings_of_command(**overrides: object) -> Settings:
    """The settings, read once per invocation (not at import, not for `--help`), with the
    command's own options over them; logging configured by them."""
    from planner_jobs import logs
    from planner_jobs.settings import load_settings

    context = click.get_current_context()
    settings: Settings | None = context.meta.get("planner.settings")
    if settings is None:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
        context.meta["planner.settings"] = settings
        logs.configure(level=settings.log_level, format=settings.log_format)
    return settings


def development_only(**overrides: object) -> Settings:
    """The settings of a command for development (`demo`, `token`): refused in production."""
    settings = settings_of_command(**overrides)
    if settings.env == "production":
        name = click.get_current_context().command_path
        raise UsageError(f"{name} is for development: PLANNER_ENV is production")
    return settings


@contextlib.contextmanager
def migrated_runtime(settings: Settings, *, periodic: bool = False) -> Iterator[Runtime]:
    """The runtime of a command that needs the current schema (one not migrated is refused)."""
    from planner_jobs.db.migrate import ensure_schema_current
    from planner_jobs.runtime import open_runtime

    with open_runtime(settings, periodic=periodic) as runtime:
        ensure_schema_current(runtime.engine)
        yield runtime


def _migrate(runtime: Runtime) -> str:
    """Bring the schema up to date, telling the database's rules whether it serves development
    (where a link in a notification may be plain http:); the one-line summary."""
    from planner_jobs.db.migrate import migrate

    development = runtime.settings.env == "development"
    return migrate(runtime.direct_engine, development=development).summary()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="planner-jobs")
def cli() -> None:
    """planner-jobs: the Proactive Planner's background jobs.

    Settings come from PLANNER_* environment variables (or a .env file); with no
    PLANNER_DATABASE_URL an embedded PostgreSQL is started in $PLANNER_DATA_DIR/pg.
    """


def _listen_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=None,
        help="Port of the HTTP API (default: PLANNER_PORT, 8000).",
    )(command)
    return click.option(
        "--host",
        default=None,
        help="Address the HTTP API listens on (default: PLANNER_HOST, 127.0.0.1).",
    )(command)


@cli.command()
@_listen_options
def run(host: str | None, port: int | None) -> None:
    """Everything on one machine: migrate, the HTTP API (on PLANNER_HOST:PLANNER_PORT,
    127.0.0.1:8000 unless told), workers for every queue, the cron schedule.

    Ctrl-C or SIGTERM stops it gracefully.
    """
    from planner_jobs.engine.worker import ONE_MACHINE
    from planner_jobs.runtime import open_runtime
    from planner_jobs.service import bind_socket, serve

    settings = settings_of_command(host=host, port=port)
    sock = bind_socket(settings.host, settings.port)
    with open_runtime(settings) as runtime:
        logging.getLogger("planner_jobs").info(_migrate(runtime))
        asyncio.run(serve(runtime, api_socket=sock, workers=ONE_MACHINE))


@cli.command()
@_listen_options
def demo(host: str | None, port: int | None) -> None:
    """Development only: fill the database with demo users in many time zones (days to close,
    plans, routines, reminders due in the next minutes, push subscriptions to a receiver served
    here that decrypts and prints what it gets), request an export, then run like `run` (the API
    on PLANNER_HOST:PLANNER_PORT, 127.0.0.1:8000 unless told). The dashboard (/admin) shows
    closed user-days, sent reminders and the export within a minute.
    """
    from planner_jobs.demo import ZONES, DemoReceiver, seed
    from planner_jobs.engine.worker import ONE_MACHINE
    from planner_jobs.jobs import exports
    from planner_jobs.runtime import open_runtime
    from planner_jobs.service import bind_socket, bound_address, serve

    settings = development_only(host=host, port=port)
    receiver = DemoReceiver()
    settings = settings.model_copy(
        update={"push_allowed_hosts": (*settings.push_allowed_hosts, receiver.host)}
    )
    sock = bind_socket(settings.host, settings.port)
    say = logging.getLogger("planner_jobs.demo").info
    with receiver.serving(), open_runtime(settings) as runtime:
        say(_migrate(runtime))
        users = seed(runtime.engine, receiver, now=dt.datetime.now(dt.UTC))
        export = exports.request_export(runtime.engine, users[0], "json").job
        say(
            "demo: %d users in %d time zones, export %s requested",
            len(users),
            len(ZONES),
            export.id,
        )
        say("demo: the dashboard is at %s/admin", bound_address(sock))
        say("demo: a token for the API: planner-jobs token %s", users[0])
        asyncio.run(serve(runtime, api_socket=sock, workers=ONE_MACHINE))


@cli.command(name="migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from planner_jobs.runtime import open_runtime

    with open_runtime(settings_of_command(), periodic=False) as runtime:
        click.echo(_migrate(runtime))


@cli.command()
@click.argument("role")
def grant(role: str) -> None:
    """Let ROLE (an existing database role, the main app's) call planner_notify() and
    planner_request_export(), and nothing else. Idempotent."""
    from planner_jobs.db.migrate import grant_way_in
    from planner_jobs.runtime import open_runtime

    with open_runtime(settings_of_command(), periodic=False) as runtime:
        click.echo(grant_way_in(runtime.engine, role).summary())


@cli.command()
@_listen_options
def api(host: str | None, port: int | None) -> None:
    """The HTTP API alone, on PLANNER_HOST:PLANNER_PORT (127.0.0.1:8000 unless told)."""
    from planner_jobs.service import bind_socket, serve

    settings = settings_of_command(host=host, port=port)
    sock = bind_socket(settings.host, settings.port)
    with migrated_runtime(settings) as runtime:
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
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve this worker's Prometheus metrics on PLANNER_HOST:PORT/metrics.",
)
def worker(queues: Sequence[str], concurrency: int, burst: bool, metrics_port: int | None) -> None:
    """Job workers (any number of them, on any number of machines)."""
    from prometheus_client import start_http_server

    from planner_jobs.engine.worker import WorkerPlan
    from planner_jobs.service import serve

    settings = settings_of_command()
    # Burst runs are one-off catch-ups: they do not schedule the periodic tasks.
    with migrated_runtime(settings, periodic=not burst) as runtime:
        if metrics_port is not None:
            try:
                start_http_server(metrics_port, settings.host, registry=runtime.metrics.registry)
            except OSError as exc:
                raise PlannerError(
                    f"cannot serve metrics on {settings.host}:{metrics_port}: {exc.strerror}"
                ) from None
        plan = WorkerPlan(queues=tuple(queues) or QUEUES, concurrency=concurrency)
        asyncio.run(serve(runtime, workers=[plan], burst=burst))


class Instant(click.ParamType[dt.datetime]):
    """An ISO 8601 instant with its UTC offset (`2026-03-08T00:30:00+01:00`, `...Z`)."""

    name = "ISO8601"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            instant = dt.datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date and time", param, ctx)
        if instant.tzinfo is None:
            self.fail(f"{value!r} has no UTC offset (add Z or +hh:mm)", param, ctx)
        return instant.astimezone(dt.UTC)


NOW = click.option(
    "--now",
    type=Instant(),
    default=None,
    help="Act as if it were this instant (ISO 8601 with offset); default: the clock.",
)


def _now(value: dt.datetime | None) -> dt.datetime:
    return value if value is not None else dt.datetime.now(dt.UTC)


class _CronGroup(click.Group):
    """`planner-jobs cron`: a subcommand per periodic task of the catalogue, loaded only when
    `cron` itself is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from planner_jobs.catalogue import PERIODIC

        return sorted(spec.command for spec in PERIODIC)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from planner_jobs.catalogue import PERIODIC

        for spec in PERIODIC:
            if spec.command == cmd_name:
                return _cron_command(spec)
        return None


@cli.group(cls=_CronGroup)
def cron() -> None:
    """Run one of the periodic tasks once, now (workers run them on their schedule)."""


def _cron_command(spec: Periodic) -> click.Command:
    """`planner-jobs cron COMMAND`: the periodic task's own runner, once, printing its summary."""

    def run_once(now: dt.datetime | None = None) -> None:
        with migrated_runtime(settings_of_command()) as runtime, _stop_on_signal(runtime):
            at = _now(now)
            with _progress(spec, runtime, at) as advance:
                summary = spec.run(runtime, at, advance)
        click.echo(summary.line())

    command = click.Command(name=spec.command, callback=run_once, help=spec.help)
    return NOW(command) if spec.takes_now else command


@cli.command(name="export")
@click.argument("user_id", type=click.UUID)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(FORMAT_NAMES),
    required=True,
    help="The file format.",
)
def export_command(user_id: uuid.UUID, export_format: str) -> None:
    """Request an export for USER_ID as the API does; print the job as JSON."""
    from planner_jobs.jobs import exports

    settings = settings_of_command()
    with migrated_runtime(settings) as runtime:
        now = dt.datetime.now(dt.UTC)
        job = exports.request_export(runtime.engine, user_id, export_format).job
        shown = exports.export_json(
            runtime.storage, job, now=now, url_ttl=dt.timedelta(seconds=settings.export_url_ttl)
        )
    click.echo(json.dumps(shown))


@cli.command()
@click.argument("user_id", type=click.UUID)
@click.option("--title", required=True, help="The notification's title.")
@click.option("--body", required=True, help="The notification's text.")
@click.option(
    "--urgency",
    type=click.Choice(URGENCIES),
    default="normal",
    show_default=True,
    help="RFC 8030 urgency.",
)
@click.option("--topic", default=None, help="RFC 8030 topic: a newer one replaces it unseen.")
@click.option("--ttl", type=int, default=None, help="Seconds the push service keeps it.")
@click.option("--dedupe-key", default=None, help="Dropped if the user got this key in 24 h.")
@click.option(
    "--navigate",
    default=None,
    metavar="URL",
    help="Send it as a declarative Web Push message opening URL (an absolute https: URL).",
)
def notify(
    user_id: uuid.UUID,
    title: str,
    body: str,
    urgency: str,
    topic: str | None,
    ttl: int | None,
    dedupe_key: str | None,
    navigate: str | None,
) -> None:
    """Queue a notification to every browser USER_ID subscribed (the rules of planner_notify:
    an unknown user or a bad value is an error, and nothing is queued)."""
    from planner_jobs.domain.notifications import NewNotification, declarative
    from planner_jobs.jobs import notifications

    content = {"title": title, "body": body}
    notification = NewNotification(
        user_id=user_id,
        payload=content if navigate is None else declarative(content, navigate=navigate),
        urgency=urgency,
        topic=topic,
        ttl=ttl,
        dedupe_key=dedupe_key,
    )
    with migrated_runtime(settings_of_command()) as runtime:
        notification_id = notifications.notify(runtime.engine, notification, source="cli")
    click.echo(f"queued notification {notification_id} for user {user_id}")


@cli.command(name="vapid-keys")
def vapid_keys() -> None:
    """Print a new VAPID key pair (set the private one as PLANNER_VAPID_PRIVATE_KEY)."""
    from planner_jobs.push.keys import VapidKeys

    keys = VapidKeys.generate()
    click.echo(f"PLANNER_VAPID_PRIVATE_KEY={keys.private_raw}")
    click.echo(f"public key (applicationServerKey): {keys.application_server_key}")


@contextlib.contextmanager
def _stop_on_signal(runtime: Runtime) -> Iterator[None]:
    """SIGTERM or Ctrl-C asks the task to stop at its next safe point (the rollover commits
    what it closed and prints its summary); a second one interrupts at once."""
    import signal

    def first(signum: int, frame: object) -> None:
        if runtime.stopping.is_set():
            raise KeyboardInterrupt
        click.echo(f"{signal.Signals(signum).name} received: stopping at the next batch", err=True)
        runtime.stopping.set()

    earlier = {signum: signal.signal(signum, first) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in earlier.items():
            signal.signal(signum, handler)


PROGRESS_BAR_FROM = 20_000  # items of work (users, for the rollover)


@contextlib.contextmanager
def _progress(
    spec: Periodic, runtime: Runtime, now: dt.datetime
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal when the run is large (a rollover backfill after an
    outage) and the task can count its work."""
    if spec.count_work is None or not sys.stderr.isatty():
        yield None
        return
    items = spec.count_work(runtime, now)
    if items < PROGRESS_BAR_FROM:
        yield None
        return
    with click.progressbar(length=items, label=spec.progress_label, file=sys.stderr) as bar:
        yield bar.update


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
    except Exception as exc:
        reason = _connection_failure(exc)
        if reason is None:
            raise
        _fail(f"the database connection failed: {reason}", code=1)
    sys.exit(code if isinstance(code, int) else 0)


def _connection_failure(exc: Exception) -> object | None:
    """Why the database could not be reached, if that is what `exc` says (else None). The
    libraries are looked up, not imported: a command that raised theirs has loaded them."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.OperationalError):
        reason: object = exc.orig or exc
        return reason
    engine_exceptions = sys.modules.get("procrastinate.exceptions")  # the job engine's
    if engine_exceptions is not None and isinstance(exc, engine_exceptions.ConnectorException):
        cause: object = exc.__cause__ or exc
        return cause
    return None


def _fail(message: str, *, code: int) -> None:
    """`planner-jobs: error: <message>` on one line (click's own messages may span several:
    `Missing option '--format'. Choose from:` and the choices on the lines below)."""
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"planner-jobs: error: {one_line or 'failed'}", err=True)
    sys.exit(code)
