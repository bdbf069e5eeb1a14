"""A real PgBouncer (Debian's `pgbouncer`, 1.18 here) in transaction pooling mode in front of the
test server, as a main app at scale runs: a connection lent per transaction, no prepared
statements kept, no `options` startup parameter."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from planner_jobs.db.engine import libpq_url


def pgbouncer_binary() -> str:
    """Its path; without it the tests through it are skipped, except in CI
    (PLANNER_TEST_STRICT=1), whose `.ci/run` installs it."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        if os.environ.get("PLANNER_TEST_STRICT") == "1":
            pytest.fail("pgbouncer is needed (.ci/run installs Debian's pgbouncer)")
        pytest.skip("pgbouncer is not installed")
    return found


class PgBouncer:
    def __init__(self, server_url: str) -> None:
        self._binary = pgbouncer_binary()
        parts = conninfo_to_dict(libpq_url(server_url))
        with psycopg.connect(libpq_url(server_url)) as connection:
            row = connection.execute("SHOW port").fetchone()
        server_port = int(row[0]) if row else 5432
        self.user = str(parts.get("user") or "postgres")
        self._server = (str(parts.get("host") or "127.0.0.1"), server_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._folder = Path(tempfile.mkdtemp(prefix="planner-pgbouncer-"))
        self._process: subprocess.Popen[str] | None = None

    def url(self, database_url: str) -> str:
        """`database_url`'s database, through PgBouncer."""
        dbname = conninfo_to_dict(libpq_url(database_url))["dbname"]
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def transactions(self) -> int:
        """Transactions PgBouncer has carried to the server so far (its admin console)."""
        admin = make_conninfo(host="127.0.0.1", port=self.port, dbname="pgbouncer", user=self.user)
        with psycopg.connect(admin, autocommit=True) as console:
            cursor = console.execute("SHOW STATS")
            names = [column.name for column in cursor.description or ()]
            return sum(int(row[names.index("total_xact_count")]) for row in cursor.fetchall())

    def __enter__(self) -> PgBouncer:
        host, port = self._server
        config = self._folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self._folder / 'users.txt'}\n"
            f"admin_users = {self.user}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 500\ndefault_pool_size = 20\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self._folder / 'pgbouncer.log'}\n"
        )
        (self._folder / "users.txt").write_text(f'"{self.user}" ""\n')
        command = [self._binary, str(config)]
        if os.geteuid() == 0:  # it refuses to run as root: as the embedded server's user,
            # who may reach that server's socket, or nobody
            try:
                user = pwd.getpwnam("embedded_postgres").pw_name
            except KeyError:
                user = "nobody"
            command[1:1] = ["-u", user]
            self._folder.chmod(0o777)
            for path in self._folder.iterdir():
                path.chmod(0o644)
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    output = self._process.communicate()[0] if self._process.poll() else ""
                    log = self._folder / "pgbouncer.log"
                    raise RuntimeError(
                        f"pgbouncer did not start: {output}"
                        f" {log.read_text() if log.exists() else ''}"
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.communicate(timeout=10)
        shutil.rmtree(self._folder, ignore_errors=True)
