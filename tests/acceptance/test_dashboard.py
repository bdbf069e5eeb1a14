"""The operators' dashboard in a real browser (Debian's Chromium, headless, driven by
Playwright): it shows the counts of jobs that really ran, a failed job's traceback, runs a job
again when asked, refuses a visitor without the password, and every page is photographed under
the test's folder."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from planner_jobs.catalogue import build_job_app
from planner_jobs.db.engine import create_engine, libpq_url
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.jobs.exports import request_export
from tests.acceptance.conftest import Cli, base_environment, stop, wait_for_http
from tests.data import add_user, utc

PASSWORD = "a-dashboard-password"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        if os.environ.get("PLANNER_TEST_STRICT") == "1":
            pytest.fail("Chromium is needed (.ci/run installs Debian's chromium)")
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def wait_until(check: object, *, within: float = 30) -> None:
    import time

    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.2)


def test_the_dashboard_shows_what_ran_its_failures_and_retries_a_job(
    browser: object, database_url: str, tmp_path: Path, processes: list
) -> None:
    engine = create_engine(database_url)
    job_app = build_job_app(libpq_url(database_url), periodic=False)
    with engine.begin() as c:
        ada = add_user(c, created_at=utc("2026-03-01T00:00"))
        bob = add_user(c, created_at=utc("2026-03-01T00:00"))
        ghost = uuid.uuid4()  # no such user yet: its notification job fails
        failing = defer_in_transaction(
            c, job_app, "notifications.send", userId=str(ghost), payload={"title": "hi"}
        )
    for user, fmt in ((ada, "json"), (bob, "csv")):
        request_export(engine, user, fmt)
    cli = Cli(
        base_environment(
            tmp_path, PLANNER_DATABASE_URL=database_url, PLANNER_ADMIN_PASSWORD=PASSWORD
        )
    )
    server = cli.start("run")
    processes.append(server)
    origin = f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}"
    wait_for_http(f"{origin}/readyz", within=60)

    def status_of(job: int) -> str:
        with engine.connect() as c:
            return str(
                c.scalar(sa.text("SELECT status FROM procrastinate_jobs WHERE id = :j"), {"j": job})
            )

    def exports_complete() -> bool:
        with engine.connect() as c:
            return (
                c.scalar(sa.text("SELECT count(*) FROM export_jobs WHERE status = 'complete'")) == 2
            )

    wait_until(lambda: status_of(failing) == "failed" and exports_complete())
    shots = tmp_path / "screenshots"
    shots.mkdir()

    stranger = browser.new_context()  # type: ignore[attr-defined]
    refused = stranger.request.get(f"{origin}/admin")
    assert refused.status == 401
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert "Queues" not in refused.text()
    stranger.close()

    context = browser.new_context(  # type: ignore[attr-defined]
        http_credentials={"username": "admin", "password": PASSWORD},
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    assert page.goto(f"{origin}/admin").status == 200
    assert page.inner_text("#exports-complete") == "2"
    notifications = page.locator('#queues tr[data-queue="notifications"]')
    assert notifications.locator('td[data-status="failed"]').inner_text() == "1"
    exports_row = page.locator('#queues tr[data-queue="exports"]')
    assert exports_row.locator('td[data-status="todo"]').inner_text() == "0"
    page.screenshot(path=shots / "overview.png", full_page=True)

    page.goto(f"{origin}/admin/jobs?status=failed")
    page.click(f'a[href="/admin/jobs/{failing}"]')
    assert page.inner_text("#job-status") == "failed"
    assert "BadNotification" in page.inner_text(".traceback")
    assert f"user_id: there is no user {ghost}" in page.content()
    page.screenshot(path=shots / "job-failed.png", full_page=True)

    with engine.begin() as c:  # the cause fixed: the user arrives
        c.execute(
            sa.text("INSERT INTO users (id, email) VALUES (:id, 'ghost@example.com')"),
            {"id": ghost},
        )
    page.click("#retry")
    assert "is back in its queue" in page.inner_text("#done")
    wait_until(lambda: status_of(failing) == "succeeded")
    page.goto(f"{origin}/admin/jobs/{failing}")
    assert page.inner_text("#job-status") == "succeeded"
    timeline = page.inner_text("#events")
    assert timeline.index("failed") < timeline.index("retried") < timeline.rindex("succeeded")
    page.screenshot(path=shots / "job-retried.png", full_page=True)

    for name in ("jobs", "schedule", "exports", "deliveries"):
        assert page.goto(f"{origin}/admin/{name}").status == 200
        page.screenshot(path=shots / f"{name}.png", full_page=True)
        if name == "exports":
            assert page.inner_text("#exports-complete") == "2"
    context.close()

    forged = context_post(browser, origin, f"/admin/jobs/{failing}/retry")
    assert forged == 403  # no CSRF token
    code, _, output = stop(server)
    assert code == 0, output
    assert sorted(p.name for p in shots.iterdir()) == [
        "deliveries.png",
        "exports.png",
        "job-failed.png",
        "job-retried.png",
        "jobs.png",
        "overview.png",
        "schedule.png",
    ]
    engine.dispose()


def context_post(browser: object, origin: str, path: str) -> int:
    """A POST from the browser with the password but without the page's CSRF token."""
    context = browser.new_context(  # type: ignore[attr-defined]
        http_credentials={"username": "admin", "password": PASSWORD}
    )
    try:
        return int(context.request.post(f"{origin}{path}", form={"csrf": "guessed"}).status)
    finally:
        context.close()
