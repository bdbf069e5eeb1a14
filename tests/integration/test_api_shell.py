from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import jwt
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from planner_jobs.api.app import create_app
from planner_jobs.api.auth import CurrentUserId
from planner_jobs.db.engine import create_engine
from planner_jobs.db.models import User
from planner_jobs.runtime import Runtime
from tests.integration.conftest import bearer


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    app = create_app(runtime)

    @app.get("/api/whoami")
    def whoami(user_id: CurrentUserId) -> dict[str, str]:
        return {"id": str(user_id)}

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def user_id(runtime: Runtime) -> uuid.UUID:
    with runtime.engine.begin() as connection:
        return connection.execute(
            sa.insert(User).values(email="ada@example.com").returning(User.id)
        ).scalar_one()


def test_healthz_is_200_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_does_not_answer(runtime: Runtime) -> None:
    dead = create_engine("postgresql://nobody@127.0.0.1:9/nowhere")
    app = create_app(Runtime(**{**runtime.__dict__, "engine": dead}))

    with TestClient(app) as client:
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    dead.dispose()


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "planner_jobs_jobs_total" in response.text


def test_openapi_describes_the_api(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert document["info"]["title"] == "planner-jobs"
    assert "/healthz" in document["paths"]


def test_a_valid_token_reaches_the_route(
    client: TestClient, runtime: Runtime, user_id: uuid.UUID
) -> None:
    response = client.get("/api/whoami", headers=bearer(runtime, user_id))

    assert response.status_code == 200
    assert response.json() == {"id": str(user_id)}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
        {"Authorization": "Bearer not-a-token"},
    ],
)
def test_missing_or_malformed_tokens_are_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/whoami", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_expired_wrongly_signed_and_unknown_user_tokens_are_401(
    client: TestClient, runtime: Runtime, user_id: uuid.UUID
) -> None:
    expired = bearer(runtime, user_id, exp=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    forged = {
        "Authorization": "Bearer "
        + jwt.encode(
            {"sub": str(user_id), "exp": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)},
            "z" * 64,
            "HS256",
        )
    }
    stranger = bearer(runtime, uuid.uuid4())

    for headers in (expired, forged, stranger):
        assert client.get("/api/whoami", headers=headers).status_code == 401
