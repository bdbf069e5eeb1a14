"""Fixtures of the integration tests that talk to push services: a real receiver, a runtime
allowed to push to it, and helpers to subscribe browsers and run the workers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from planner_jobs.api.app import create_app
from planner_jobs.domain.notifications import NewNotification
from planner_jobs.engine.worker import WorkerPlan
from planner_jobs.jobs.notifications import notify
from planner_jobs.push.service import PushService
from planner_jobs.runtime import Runtime, open_runtime
from planner_jobs.service import serve
from planner_jobs.settings import DEFAULT_PUSH_ALLOWED_HOSTS, Settings
from tests.data import add_user, utc
from tests.push_receiver import Browser, PushReceiver


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[PushReceiver]:
    """Plain HTTP/1.1; `@pytest.mark.parametrize("receiver", ["https"], indirect=True)` makes it
    HTTPS offering HTTP/2 and HTTP/1.1, as real push services are; "https-http1" HTTPS offering
    HTTP/1.1 alone."""
    alpn = {"http": None, "https": ("h2", "http/1.1"), "https-http1": ("http/1.1",)}
    with PushReceiver(alpn=alpn[getattr(request, "param", "http")]) as receiver:
        yield receiver


@pytest.fixture
def push_runtime(database_url: str, tmp_path: Path, receiver: PushReceiver) -> Iterator[Runtime]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        data_dir=tmp_path,
        push_allowed_hosts=(*DEFAULT_PUSH_ALLOWED_HOSTS, receiver.host),
        push_ttl=3600,
    )
    with open_runtime(settings, periodic=False) as runtime:
        # A short timeout, so the "slow push service" case does not take ten seconds; a job
        # waits for it (patience above it), as every test but the one of late answers expects.
        push = PushService(
            runtime.push.keys,
            subject=settings.vapid_subject,
            ttl=3600,
            allowed_hosts=settings.push_allowed_hosts,
            timeout=1.0,
            patience=3.0,
            ca_file=receiver.ca_file,
        )
        receiver.vapid_public_key = push.keys.application_server_key
        yield dataclasses.replace(runtime, push=push)


def subscribe(runtime: Runtime, user: uuid.UUID, receiver: PushReceiver, name: str) -> Browser:
    with runtime.engine.begin() as c:
        return receiver.subscribe(c, user, name)


def raise_one(runtime: Runtime, user: uuid.UUID, payload: dict[str, Any], **options: Any) -> int:
    """Queue one notification as the CLI does (its own transaction)."""
    return notify(runtime.engine, NewNotification(user, payload, **options), source="test")


def outbox_size(runtime: Runtime) -> int:
    with runtime.engine.connect() as c:
        return c.scalar(sa.text("SELECT count(*) FROM notifications")) or 0


def new_user(runtime: Runtime) -> uuid.UUID:
    with runtime.engine.begin() as c:
        return add_user(c, created_at=utc("2026-03-01T00:00"))


def work(runtime: Runtime, *queues: str) -> None:
    """Run a burst worker on `queues` (default: notifications) until nothing is ready."""
    plan = WorkerPlan(queues=list(queues) or ["notifications"])
    asyncio.run(serve(runtime, workers=[plan], burst=True))


def time_passes(runtime: Runtime) -> None:
    """Make every scheduled retry due now (instead of waiting for it)."""
    with runtime.engine.begin() as c:
        c.execute(
            sa.text("UPDATE push_deliveries SET next_attempt_at = now() WHERE status = 'pending'")
        )
        c.execute(
            sa.text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
        )


def deliveries(runtime: Runtime) -> list[tuple[str, int, int | None]]:
    with runtime.engine.connect() as c:
        return [
            (row.status, row.attempts, row.last_status)
            for row in c.execute(
                sa.text(
                    "SELECT status, attempts, last_status FROM push_deliveries ORDER BY created_at"
                )
            )
        ]


def job_statuses(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as c:
        return list(c.scalars(sa.text("SELECT status FROM procrastinate_jobs ORDER BY id")))


def subscription_count(runtime: Runtime) -> int:
    with runtime.engine.connect() as c:
        return c.scalar(sa.text("SELECT count(*) FROM push_subscriptions")) or 0


def bearer(runtime: Runtime, subject: object, **claims: object) -> dict[str, str]:
    """An Authorization header with a token the main app would issue for `subject`."""
    payload = {"sub": str(subject), "exp": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)}
    payload.update(claims)
    secret = runtime.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {jwt.encode(payload, secret, 'HS256')}"}


# --- the dashboard ------------------------------------------------------------------------------

PASSWORD = "p" * 32  # the dashboard's, in these tests


def client_of(runtime: Runtime, **settings: object) -> TestClient:
    """The HTTP API over `runtime`, with some settings changed."""
    changed = runtime.settings.model_copy(update=settings)
    return TestClient(create_app(dataclasses.replace(runtime, settings=changed)))


@pytest.fixture
def dashboard(runtime: Runtime) -> Iterator[TestClient]:
    """A client of the dashboard, let in with its password."""
    with client_of(runtime, admin_password=SecretStr(PASSWORD)) as client:
        client.auth = ("admin", PASSWORD)
        yield client


def status_of(runtime: Runtime, job: int) -> str:
    with runtime.engine.connect() as c:
        return str(
            c.scalar(sa.text("SELECT status FROM procrastinate_jobs WHERE id = :j"), {"j": job})
        )
