"""Who reaches the dashboard and who may act through it: DNS rebinding against the development
dashboard, forged and planted CSRF tokens, requests from other sites."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from planner_jobs.api.admin import SESSION_COOKIE
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.runtime import Runtime
from tests.integration.conftest import PASSWORD, client_of, status_of


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("[::1]:8000", 200),
        ("LOCALHOST", 200),
        ("planner.localhost:8000", 200),
        ("attacker.example", 403),
        ("attacker.example:8000", 403),
        ("127.0.0.1.attacker.example", 403),
        ("", 403),
    ],
)
def test_the_passwordless_development_dashboard_answers_only_loopback_names(
    runtime: Runtime, host: str, status: int
) -> None:
    with client_of(runtime, admin_password=None) as client:
        response = client.get("/admin", headers={"Host": host})

    assert response.status_code == status
    if status == 403:
        assert "localhost" in response.text


def test_with_a_password_any_host_may_ask_for_it(runtime: Runtime) -> None:
    with client_of(runtime, admin_password=SecretStr(PASSWORD)) as client:
        response = client.get("/admin", headers={"Host": "jobs.example"}, auth=("admin", PASSWORD))
    assert response.status_code == 200


@pytest.fixture
def cancellable(runtime: Runtime) -> int:
    """A job waiting in its queue (cancelling it is the action tried)."""
    with runtime.engine.begin() as c:
        job = defer_in_transaction(c, runtime.job_app, "notifications.deliver", notificationIds=[])
    assert job is not None
    return job


def page_token(client: TestClient, job: int) -> str:
    page = client.get(f"/admin/jobs/{job}")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_an_action_with_the_pages_token_is_done(
    dashboard: TestClient, runtime: Runtime, cancellable: int
) -> None:
    token = page_token(dashboard, cancellable)

    response = dashboard.post(
        f"/admin/jobs/{cancellable}/cancel",
        data={"csrf": token},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert status_of(runtime, cancellable) == "cancelled"


def test_a_planted_cookie_and_a_token_of_the_attackers_choosing_are_refused(
    dashboard: TestClient, runtime: Runtime, cancellable: int
) -> None:
    """The double-submit check compared the form with an unsigned cookie: an attacker who can
    set a cookie (a sibling subdomain, plain HTTP) chose both."""
    dashboard.cookies.set(SESSION_COOKIE, "attackers-choice", path="/admin")

    response = dashboard.post(
        f"/admin/jobs/{cancellable}/cancel",
        data={"csrf": "attackers-choice"},
        follow_redirects=False,
    )

    assert response.status_code == 403
    assert status_of(runtime, cancellable) == "todo"


def test_a_token_of_another_session_is_refused(
    dashboard: TestClient, runtime: Runtime, cancellable: int
) -> None:
    token = page_token(dashboard, cancellable)
    dashboard.cookies.clear()
    dashboard.get("/admin")  # a new session

    response = dashboard.post(
        f"/admin/jobs/{cancellable}/cancel", data={"csrf": token}, follow_redirects=False
    )

    assert response.status_code == 403
    assert status_of(runtime, cancellable) == "todo"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.attacker.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_request_from_another_site_is_refused_even_with_the_token(
    dashboard: TestClient, runtime: Runtime, cancellable: int, headers: dict[str, str]
) -> None:
    token = page_token(dashboard, cancellable)

    response = dashboard.post(
        f"/admin/jobs/{cancellable}/cancel",
        data={"csrf": token},
        headers=headers,
        follow_redirects=False,
    )

    assert response.status_code == 403
    assert status_of(runtime, cancellable) == "todo"
