"""Shared fixtures: one real PostgreSQL per test session, a migrated template, a clone per test.

The server is the one `PLANNER_TEST_DATABASE_URL` names (CI runs the suite once that way, against
its PostgreSQL 15) or, when unset, an embedded server started in a temporary folder, as
`planner-jobs` does on a laptop. A configured server that does not answer fails the session: it
never silently turns into skipped tests.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from planner_jobs.db.embedded import start_embedded_postgres
from planner_jobs.db.engine import create_engine, libpq_url
from planner_jobs.db.migrate import migrate
from planner_jobs.runtime import Runtime, open_runtime
from planner_jobs.settings import Settings

TEST_SERVER_VARIABLE = "PLANNER_TEST_DATABASE_URL"


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=5)


def _with_database(url: str, name: str) -> str:
    return libpq_url(make_url(libpq_url(url)).set(database=name).render_as_string(False))


@pytest.fixture(scope="session")
def server_url() -> str:
    """A libpq URL of a database on the test server, from which others can be created."""
    configured = os.environ.get(TEST_SERVER_VARIABLE)
    if configured:
        try:
            _admin(configured).close()
        except psycopg.OperationalError as exc:
            pytest.fail(f"{TEST_SERVER_VARIABLE} is set but the server does not answer: {exc}")
        return libpq_url(configured)
    # Not under pytest's basetemp: a pytest session starting meanwhile deletes all but the three
    # newest of those, and with them a running server's data.
    folder = Path(tempfile.mkdtemp(prefix="planner-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # after the server stops (LIFO)
    return start_embedded_postgres(folder / "pg")


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    """A database migrated once, cloned by every test that needs one."""
    name = f"pj_template_{uuid.uuid4().hex[:8]}"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(_with_database(server_url, name))
    migrate(engine, development=True)  # as `planner-jobs migrate` does with the default env
    engine.dispose()
    yield name
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(server_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"pj_test_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}" STRATEGY FILE_COPY')
    yield _with_database(server_url, name)
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A database with no schema at all."""
    name = f"pj_empty_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(server_url, name)
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, database_url=database_url, data_dir=tmp_path)  # type: ignore[call-arg]


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    with open_runtime(settings) as runtime:
        yield runtime


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PLANNER_* variable or .env file of the developer's shell leaks into a test."""
    for variable in list(os.environ):
        if variable.startswith("PLANNER_") and variable != TEST_SERVER_VARIABLE:
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
