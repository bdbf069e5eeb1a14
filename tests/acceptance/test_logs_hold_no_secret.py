"""Whoever reads the logs must not be able to download a user's export or call the service as
us: `planner-jobs run` with JSON logs is sent succeeding and failing requests carrying every
kind of secret, and its whole output is searched for each of them."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from planner_jobs.db.engine import create_engine
from tests.acceptance.conftest import Cli, base_environment, stop, wait_for_http
from tests.data import add_user, utc

SERVICE_TOKEN = "service-token-that-must-never-be-logged-0123456789"
ADMIN_PASSWORD = "admin-password-that-must-never-be-logged"


def request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            body: bytes | None = None) -> int:  # fmt: skip
    sent = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:  # noqa: S310 (our own URL)
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_no_signature_token_password_or_credential_reaches_the_log(
    database_url: str, tmp_path: Path, processes: list
) -> None:
    engine = create_engine(database_url)
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
    cli = Cli(
        base_environment(
            tmp_path,
            PLANNER_DATABASE_URL=database_url,
            PLANNER_LOG_FORMAT="json",
            PLANNER_SERVICE_TOKEN=SERVICE_TOKEN,
            PLANNER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        )
    )
    port = cli.environment["PLANNER_PORT"]
    cli.environment["PLANNER_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    jwt = cli("token", str(user)).stdout.strip()
    server = cli.start("run")
    processes.append(server)
    origin = f"http://127.0.0.1:{cli.environment['PLANNER_PORT']}"
    wait_for_http(f"{origin}/readyz", within=60)
    bearer = {"Authorization": f"Bearer {jwt}", "Content-Type": "application/json"}

    created = urllib.request.Request(  # noqa: S310
        f"{origin}/api/exports", data=b'{"format": "json"}', method="POST", headers=bearer
    )
    with urllib.request.urlopen(created, timeout=10) as response:  # noqa: S310
        export = json.loads(response.read())["id"]
    link = ""
    deadline = time.monotonic() + 60
    while not link and time.monotonic() < deadline:
        shown = urllib.request.Request(f"{origin}/api/exports/{export}", headers=bearer)  # noqa: S310
        with urllib.request.urlopen(shown, timeout=10) as response:  # noqa: S310
            link = json.loads(response.read()).get("downloadUrl") or ""
        time.sleep(0.2)
    assert link, "the export never completed"
    signature = parse_qs(urlsplit(link).query)["signature"][0]
    amz = {"X-Amz-Signature": "a" * 64, "X-Amz-Credential": "AKIAEXAMPLEKEY%2F20261204"}

    statuses = [
        request(link),  # the download itself: 200
        request(link.replace(signature, signature[::-1])),  # a bad signature: 403
        request(f"{origin}/api/exports/{export}/download?expires=1&signature={signature}"),
        request(
            f"{origin}/api/exports/{export}?X-Amz-Signature={amz['X-Amz-Signature']}"
            f"&X-Amz-Credential={amz['X-Amz-Credential']}&token={SERVICE_TOKEN}",
            headers=bearer,
        ),
        request(
            f"{origin}/internal/notifications",
            method="POST",
            body=json.dumps({"notifications": [{"userId": str(user), "payload": {}}]}).encode(),
            headers={
                "Authorization": f"Bearer {SERVICE_TOKEN}",
                "Content-Type": "application/json",
            },
        ),
        request(
            f"{origin}/internal/notifications?token={SERVICE_TOKEN}",
            method="POST",
            body=b"{}",
            headers={"Authorization": "Bearer wrong-token-also-a-secret-to-someone"},
        ),
        request(
            f"{origin}/admin",
            headers={
                "Authorization": "Basic "
                + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
            },
        ),
    ]
    code, _, output = stop(server)

    assert statuses == [200, 403, 403, 200, 202, 401, 200]
    assert code == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line["message"] for line in lines if line.get("logger") == "uvicorn.access"]
    assert len(access) >= len(statuses), output  # the requests were logged...
    assert any("signature=[redacted]" in line for line in access)  # ...without their secrets
    encoded_password = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    for secret in (
        signature,
        signature[::-1],
        SERVICE_TOKEN,
        jwt,
        ADMIN_PASSWORD,
        encoded_password,
        "wrong-token-also-a-secret-to-someone",
        amz["X-Amz-Signature"],
        "AKIAEXAMPLEKEY",
    ):
        assert secret not in output, secret
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM notifications WHERE source = 'http'")) == 1
    engine.dispose()
