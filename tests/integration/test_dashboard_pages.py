"""The dashboard's pages and actions for operators acting in bulk: errors as pages, a banner shown
once, Retry all and Cancel all behind a count, Pause and Resume, Run now, the Workers page, the
Overview's own refresh script, a job's timeline in time order."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.runtime import Runtime
from tests.integration.conftest import PASSWORD, client_of, new_user, status_of
from tests.integration.test_inspection import run_queue
from tests.integration.test_operators_in_bulk import send_job
from tests.integration.test_way_in import running_worker

SAME_ORIGIN = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}


def token_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def post(client: TestClient, path: str, page: str, **fields: str) -> str:
    """Submit a form of `page` (its CSRF token) and follow to the page the action returns to."""
    response = client.post(
        path, data={"csrf": token_of(client.get(page).text), **fields}, headers=SAME_ORIGIN
    )
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/admin/jobs?status=nope", 400, "there is no status &#39;nope&#39;"),
        ("/admin/jobs?queue=nope", 400, "there is no queue &#39;nope&#39;"),
        ("/admin/jobs?user=someone", 400, "user: &#39;someone&#39; is not a user id"),
        ("/admin/jobs/999999", 404, "there is no job 999999"),
        ("/admin/jobs/abc", 422, "job_id: Input should be a valid integer"),
        ("/admin/jobs?limit=0", 422, "limit: Input should be greater than or equal to 1"),
    ],
)
def test_a_page_that_fails_is_a_page_saying_why(
    dashboard: TestClient,
    path: str,
    status: int,
    message: str,
) -> None:
    response = dashboard.get(path)

    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert '<a href="/admin">Back to the overview</a>' in response.text


def test_a_refused_password_is_a_page_that_still_asks_for_it(runtime: Runtime) -> None:
    with client_of(runtime, admin_password=SecretStr(PASSWORD)) as client:
        response = client.get("/admin", auth=("admin", "wrong"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert "the dashboard needs the admin password" in response.text
    assert "/admin/jobs" not in response.text  # nothing of the dashboard named to a stranger


def test_a_page_that_is_not_there_is_a_page_naming_nothing_of_the_dashboard(
    dashboard: TestClient,
) -> None:
    response = dashboard.get("/admin/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not Found" in response.text
    assert "/admin/jobs" not in response.text


def test_what_an_action_did_is_shown_once(
    dashboard: TestClient,
    runtime: Runtime,
) -> None:
    job = send_job(runtime, uuid.uuid4())
    run_queue(runtime, "notifications")

    response = dashboard.post(
        f"/admin/jobs/{job}/retry",
        data={"csrf": token_of(dashboard.get(f"/admin/jobs/{job}").text)},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    shown = dashboard.get(response.headers["location"])
    reloaded = dashboard.get(response.headers["location"])

    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/jobs/{job}"  # nothing in the URL
    assert f"job {job} (failed) is back in its queue" in shown.text
    assert 'id="done"' not in reloaded.text


def test_retry_all_and_cancel_all_say_how_many_before_they_act(
    dashboard: TestClient,
    runtime: Runtime,
) -> None:
    ghost = uuid.uuid4()
    failed = [send_job(runtime, ghost), send_job(runtime, ghost), send_job(runtime, uuid.uuid4())]
    run_queue(runtime, "notifications")
    filtered = f"/admin/jobs?status=failed&user={ghost}"

    jobs_page = dashboard.get(filtered).text
    confirm = dashboard.get(f"/admin/jobs/all/retry?status=failed&user={ghost}")
    done = post(
        dashboard,
        "/admin/jobs/all/retry",
        f"/admin/jobs/all/retry?status=failed&user={ghost}",
        status="failed",
        user=str(ghost),
    )

    assert f'href="/admin/jobs/all/retry?status=failed&amp;user={ghost}"' in jobs_page
    assert "<h1>Retry 2 jobs?</h1>" in confirm.text
    assert f"user <b>{ghost}</b>" in confirm.text
    assert "2 jobs are back in their queues" in done
    assert [status_of(runtime, job) for job in failed] == ["todo", "todo", "failed"]

    confirm_cancel = dashboard.get("/admin/jobs/all/cancel?queue=notifications")
    cancelled = post(
        dashboard,
        "/admin/jobs/all/cancel",
        "/admin/jobs/all/cancel?queue=notifications",
        queue="notifications",
    )
    assert "<h1>Cancel 2 jobs?</h1>" in confirm_cancel.text
    assert "2 jobs are cancelled" in cancelled
    assert [status_of(runtime, job) for job in failed] == ["cancelled", "cancelled", "failed"]


def test_pause_resume_and_run_now_are_buttons(
    dashboard: TestClient,
    runtime: Runtime,
) -> None:
    paused = post(dashboard, "/admin/queues/exports/pause", "/admin")
    resumed = post(dashboard, "/admin/queues/exports/resume", "/admin")
    ran = post(dashboard, "/admin/schedule/exports.expire/run", "/admin/schedule")

    assert "queue exports is paused" in paused
    assert 'id="resume-exports"' in paused
    assert "queue exports is resumed" in resumed
    assert 'id="pause-exports"' in resumed
    assert re.search(r"exports.expire is queued to run now as job \d+", ran)
    assert dashboard.get("/admin/queues/nope/pause").status_code == 405
    refused = dashboard.post("/admin/queues/nope/pause", data={}, headers=SAME_ORIGIN)
    assert refused.status_code == 404
    assert "there is no queue &#39;nope&#39; to pause" in refused.text


def test_the_workers_page_says_where_each_worker_runs(
    dashboard: TestClient,
    runtime: Runtime,
) -> None:
    with running_worker(runtime):
        page = dashboard.get("/admin/workers").text

    assert re.search(r"<td>notifications</td>", page), page
    found = re.search(r'<td class="num">(\d+)</td>', page)
    assert found is not None
    assert int(found.group(1)) > 0  # the worker's process id


def test_the_overview_refreshes_itself_with_a_script_of_its_own_origin(
    dashboard: TestClient,
) -> None:
    page = dashboard.get("/admin")
    script = dashboard.get("/admin/static/overview.js")

    assert '<script src="/admin/static/overview.js" defer></script>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (
        "unsafe-inline"
        not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    )
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "data-live" in script.text
    for part in ("now-cards", "hour-cards", "queues", "chart", "schedule"):
        assert re.search(rf'id="{part}"[^>]*data-live', page.text), part


def test_a_jobs_timeline_is_in_the_order_things_happen(
    dashboard: TestClient,
    runtime: Runtime,
) -> None:
    with runtime.engine.begin() as c:
        later = c.scalar(sa.text("SELECT now() + interval '1 hour'"))
        job = defer_in_transaction(
            c, runtime.job_app, "exports.build", export_id=str(uuid.uuid4()), schedule_at=later
        )

    page = dashboard.get(f"/admin/jobs/{job}").text

    timeline = page[page.index('id="events"') :]
    assert timeline.index("<td>deferred</td>") < timeline.index("<td>scheduled</td>")


def test_the_jobs_page_filters_by_user_and_shows_how_long_each_job_took(
    dashboard: TestClient,
    runtime: Runtime,
) -> None:
    user = new_user(runtime)
    mine = send_job(runtime, user)
    other = send_job(runtime, new_user(runtime))
    run_queue(runtime, "notifications")

    page = dashboard.get(f"/admin/jobs?user={user}").text

    assert f'href="/admin/jobs/{mine}"' in page
    assert f'href="/admin/jobs/{other}"' not in page
    assert re.search(r'<td class="num">[\d.]+ s</td>', page), page


def test_the_chart_has_a_time_axis_a_scale_and_says_what_each_bar_counts(
    dashboard: TestClient,
    runtime: Runtime,
) -> None:
    send_job(runtime, uuid.uuid4())  # fails
    send_job(runtime, new_user(runtime))  # succeeds
    run_queue(runtime, "notifications")

    chart = dashboard.get("/admin").text.split('id="chart"')[1].split("</figure>")[0]

    assert "jobs / minute" in chart
    assert "minute (UTC)" in chart
    assert len(re.findall(r'<text class="axis"[^>]*>\d\d:\d\d</text>', chart)) == 5
    assert re.search(r"\d\d:\d\d UTC: 1 succeeded, 1 failed or aborted</title>", chart), chart
