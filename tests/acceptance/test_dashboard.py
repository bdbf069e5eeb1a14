"""The operators' dashboard in a real browser (Debian's Chromium, headless, driven by
Playwright): it shows the counts of jobs that really ran, a failed job's traceback, runs a job
again when asked, refuses a visitor without the password, and every page is photographed under
the test's folder."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from planner_jobs.catalogue import build_job_app
from planner_jobs.db.engine import libpq_url
from planner_jobs.engine import pauses
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
    browser: object, database_url: str, engine: sa.Engine, tmp_path: Path, processes: list
) -> None:
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


def context_post(browser: object, origin: str, path: str) -> int:
    """A POST from the browser with the password but without the page's CSRF token."""
    context = browser.new_context(  # type: ignore[attr-defined]
        http_credentials={"username": "admin", "password": PASSWORD}
    )
    try:
        return int(context.request.post(f"{origin}{path}", form={"csrf": "guessed"}).status)
    finally:
        context.close()


def test_the_dashboard_acts_in_bulk_pauses_runs_now_and_keeps_the_overview_current(
    browser: object, database_url: str, engine: sa.Engine, tmp_path: Path, processes: list
) -> None:
    job_app = build_job_app(libpq_url(database_url), periodic=False)
    ghosts = [uuid.uuid4() for _ in range(3)]  # no such users: their notifications fail
    with engine.begin() as c:
        failing = [
            defer_in_transaction(
                c, job_app, "notifications.send", userId=str(g), payload={"t": "x"}
            )
            for g in ghosts
        ]
    cli = Cli(
        base_environment(
            tmp_path, PLANNER_DATABASE_URL=database_url, PLANNER_ADMIN_PASSWORD=PASSWORD
        )
    )
    server = cli.start("run", log=tmp_path / "run.log")
    processes.append(server)
    origin = f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}"
    wait_for_http(f"{origin}/readyz", within=60)

    def statuses() -> list[str]:
        with engine.connect() as c:
            found = dict(
                c.execute(sa.text("SELECT id, status::text FROM procrastinate_jobs")).all()
            )
        return [found[job] for job in failing]

    wait_until(lambda: statuses() == ["failed"] * 3)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = browser.new_context(  # type: ignore[attr-defined]
        http_credentials={"username": "admin", "password": PASSWORD},
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))

    # Pause a queue from the Overview: its row says so, and jobs wait in it.
    page.goto(f"{origin}/admin")
    page.click("#pause-notifications")
    assert "queue notifications is paused" in page.inner_text("#done")
    assert page.locator('#queues tr[data-queue="notifications"] [data-paused]').count() == 1
    page.screenshot(path=shots / "overview-paused.png", full_page=True)

    # Retry all the failed ones, after a page that says how many; they wait while paused.
    page.goto(f"{origin}/admin/jobs?status=failed")
    page.click("#retry-all")
    assert page.inner_text("h1") == "Retry 3 jobs?"
    page.screenshot(path=shots / "confirm-retry-all.png", full_page=True)
    page.click("#confirm")
    assert page.inner_text("#done") == "3 jobs are back in their queues"
    assert statuses() == ["todo"] * 3

    # The Overview shows the three waiting without a reload, then the resume lets them run.
    page.goto(f"{origin}/admin")
    assert page.locator("#done").count() == 0  # the banner was shown once, on the Jobs page
    with engine.begin() as c:  # the cause fixed for one of them
        c.execute(
            sa.text("INSERT INTO users (id, email) VALUES (:i, 'g@example.com')"), {"i": ghosts[0]}
        )
    todo = '#queues tr[data-queue="notifications"] td[data-status="todo"]'
    assert page.inner_text(todo) == "3"
    page.click("#resume-notifications")
    assert "queue notifications is resumed" in page.inner_text("#done")
    wait_until(lambda: sorted(statuses()) == ["failed", "failed", "succeeded"], within=15)
    # What the page has not seen yet: the exports queue paused, two builds waiting in it; the
    # Overview's script shows them without a reload.
    with engine.begin() as c:
        pauses.pause(c, "exports")
    time.sleep(2.0)  # the workers have read the pause
    with engine.begin() as c:
        for _ in range(2):
            defer_in_transaction(c, job_app, "exports.build", export_id=str(uuid.uuid4()))
    exports_todo = '#queues tr[data-queue="exports"] td[data-status="todo"]'
    wait_until(lambda: page.inner_text(exports_todo) == "2", within=15)
    assert int(page.get_attribute("body", "data-refreshes") or 0) >= 1
    assert page.locator('#queues tr[data-queue="exports"] [data-paused]').count() == 1
    assert page.inner_text(todo) == "0"
    page.screenshot(path=shots / "overview-refreshed.png", full_page=True)

    # Run a periodic task now, from the Schedule.
    page.goto(f"{origin}/admin/schedule")
    page.click('[id="run-tokens.cleanup"]')
    assert "tokens.cleanup is queued to run now as job" in page.inner_text("#done")
    page.screenshot(path=shots / "schedule-run-now.png", full_page=True)

    # Workers: where each runs; the jobs of one user; a page that fails says why, as a page.
    page.goto(f"{origin}/admin/workers")
    assert page.locator("#workers tr[data-worker]").count() == 3
    assert str(server.pid) in page.inner_text("#workers")
    page.screenshot(path=shots / "workers.png", full_page=True)
    page.goto(f"{origin}/admin/jobs?user={ghosts[1]}")
    assert page.locator("#jobs tr").count() == 2  # the header and the user's one job
    page.screenshot(path=shots / "jobs-of-a-user.png", full_page=True)
    page.goto(f"{origin}/admin/jobs/{failing[1]}")  # the queue's name fits its card
    assert page.locator("#job-queue").evaluate("e => e.scrollWidth <= e.clientWidth")
    assert not [url for url in asked if url.endswith("/favicon.ico")]
    assert errors == []  # no script error, nothing the Content-Security-Policy refused
    answer = page.goto(f"{origin}/admin/jobs?status=nope")
    assert answer is not None
    assert answer.status == 400
    assert "there is no status 'nope'" in page.inner_text("#error")
    page.screenshot(path=shots / "error.png", full_page=True)
    context.close()

    code, _, output = stop(server)
    assert code == 0, output
    assert len(list(shots.iterdir())) == 7
