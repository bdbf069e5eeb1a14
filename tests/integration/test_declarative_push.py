"""Declarative Web Push (WebKit's form, `"web_push": 8030`): checked by the database wherever it
enters (SQL, HTTP, the job, the CLI in tests/acceptance), delivered as sent; and planner-jobs'
own notifications in that form when the web app's URL is known."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from planner_jobs.api.app import create_app
from planner_jobs.db.engine import libpq_url
from planner_jobs.domain.notifications import AppLinks
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.jobs.exports import request_export
from planner_jobs.jobs.reminders import send_reminders
from planner_jobs.runtime import Runtime
from tests.data import add_task
from tests.integration.conftest import job_statuses, new_user, outbox_size, subscribe, work
from tests.push_receiver import PushReceiver

APP = "https://planner.example"
GOOD: dict[str, Any] = {
    "web_push": 8030,
    "notification": {
        "title": "Plan your day",
        "navigate": "https://planner.example/today",
        "body": "Three tasks wait",
        "lang": "en-GB",
        "dir": "ltr",
        "tag": "today",
        "icon": "https://planner.example/icon.png",
        "silent": False,
        "data": {"n": [1, {"deep": None}]},
    },
    "app_badge": 3,
    "mutable": True,
}


def declarative(**notification: Any) -> dict[str, Any]:
    return {"web_push": 8030, "notification": {"title": "t", "navigate": APP, **notification}}


def notify(runtime: Runtime, payload: dict[str, Any]) -> int:
    with psycopg.connect(libpq_url(runtime.database_url)) as connection:
        row = connection.execute(
            "SELECT planner_notify(%s, %s)", (new_user(runtime), Jsonb(payload))
        ).fetchone()
        assert row is not None
        return int(row[0])


def refusal(runtime: Runtime, payload: dict[str, Any]) -> str:
    with pytest.raises(psycopg.Error) as raised:
        notify(runtime, payload)
    assert raised.value.sqlstate == "22023", raised.value
    return raised.value.diag.message_primary or ""


def serves_development(runtime: Runtime, development: bool) -> None:
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE planner_settings SET development = :d"), {"d": development})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"web_push": 8030}, "payload.notification: a declarative message"),
        ({"web_push": 8030, "notification": "Hi"}, "payload.notification: a declarative"),
        ({"web_push": 8030, "notification": {"navigate": APP}}, "payload.notification.title:"),
        (declarative(title=""), "payload.notification.title: must be a non-empty string"),
        (declarative(title="  "), "payload.notification.title: must be a non-empty string"),
        (declarative(title=7), "payload.notification.title: must be a non-empty string"),
        ({"web_push": 8030, "notification": {"title": "t"}}, "payload.notification.navigate:"),
        (declarative(navigate="/today"), "payload.notification.navigate: must be an absolute"),
        (declarative(navigate="today"), "payload.notification.navigate: must be an absolute"),
        (declarative(navigate="https://"), "payload.notification.navigate: must be an absolute"),
        (declarative(navigate="ftp://x.example/a"), "payload.notification.navigate:"),
        (declarative(navigate="javascript:alert(1)"), "payload.notification.navigate:"),
        (declarative(navigate="https://a b.example/"), "payload.notification.navigate:"),
        (declarative(navigate=["https://x.example"]), "payload.notification.navigate:"),
        (declarative(body=1), "payload.notification.body: must be a string"),
        (declarative(lang=None), "payload.notification.lang: must be a string"),
        (declarative(tag={"a": 1}), "payload.notification.tag: must be a string"),
        (declarative(dir="up"), "payload.notification.dir: must be auto, ltr or rtl"),
        (declarative(icon="icon.png"), "payload.notification.icon: must be an absolute"),
        (declarative(silent="yes"), "payload.notification.silent: must be true or false"),
        (declarative(app_badge=-1), "payload.notification.app_badge: must be an integer"),
        (declarative(mutable=1), "payload.notification.mutable: must be true or false"),
        ({**declarative(), "app_badge": 1.5}, "payload.app_badge: must be an integer"),
        ({**declarative(), "app_badge": "1"}, "payload.app_badge: must be an integer"),
        ({**declarative(), "app_badge": 2**64}, "payload.app_badge: must be an integer"),
        ({**declarative(), "mutable": "true"}, "payload.mutable: must be true or false"),
    ],
)
def test_a_malformed_declarative_message_is_refused_naming_its_member(
    runtime: Runtime, payload: dict[str, Any], message: str
) -> None:
    assert refusal(runtime, payload).startswith(message)
    assert outbox_size(runtime) == 0


@pytest.mark.parametrize(
    "payload",
    [
        GOOD,
        declarative(),
        declarative(dir="auto", app_badge=0, mutable=False),
        {**declarative(), "app_badge": 2**64 - 1, "actions": [], "unknown": {"later": 1}},
        declarative(navigate="HTTPS://planner.example:8443/a?b=c#d"),
        {"web_push": 8031, "notification": None},  # not the declarative form: not its rules
        {"web_push": "8030", "title": "an ordinary payload with a member of that name"},
    ],
)
def test_a_well_formed_declarative_message_and_other_payloads_are_accepted(
    runtime: Runtime, payload: dict[str, Any]
) -> None:
    assert notify(runtime, payload) > 0


def test_plain_http_links_are_accepted_only_where_the_database_serves_development(
    runtime: Runtime,
) -> None:
    on_a_laptop = declarative(navigate="http://127.0.0.1:5173/today")

    assert notify(runtime, on_a_laptop) > 0  # tests migrate as development does
    serves_development(runtime, False)
    message = refusal(runtime, on_a_laptop)
    assert message.startswith("payload.notification.navigate: must be an absolute https: URL,")
    assert "development" not in message
    assert notify(runtime, declarative()) > 0


def test_a_declarative_message_is_delivered_as_it_was_sent(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "safari")
    with psycopg.connect(libpq_url(push_runtime.database_url)) as connection:
        connection.execute("SELECT planner_notify(%s, %s)", (user, Jsonb(GOOD)))

    work(push_runtime)

    assert receiver.payloads("safari") == [GOOD]
    assert receiver.errors == []


@pytest.fixture
def service_client(push_runtime: Runtime) -> Iterator[TestClient]:
    token = "a-service-token-of-at-least-32-bytes!"
    settings = push_runtime.settings.model_copy(update={"service_token": SecretStr(token)})
    with TestClient(create_app(dataclasses.replace(push_runtime, settings=settings))) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def test_the_http_way_in_answers_422_naming_the_member(
    service_client: TestClient, push_runtime: Runtime
) -> None:
    user = str(new_user(push_runtime))
    items = [
        {"userId": user, "payload": GOOD},
        {"userId": user, "payload": declarative(navigate="/relative")},
    ]

    response = service_client.post("/internal/notifications", json={"notifications": items})

    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(
        "notifications.1.payload.notification.navigate: must be an absolute https: URL"
    )
    assert outbox_size(push_runtime) == 0
    accepted = service_client.post("/internal/notifications", json={"notifications": items[:1]})
    assert accepted.status_code == 202, accepted.text


def test_a_send_job_with_a_malformed_declarative_message_fails_and_sends_nothing(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "safari")
    with push_runtime.engine.begin() as c:
        defer_in_transaction(
            c,
            push_runtime.job_app,
            "notifications.send",
            userId=str(user),
            payload=declarative(title=""),
        )

    work(push_runtime)

    assert job_statuses(push_runtime) == ["failed"]
    assert outbox_size(push_runtime) == 0
    assert receiver.received == []


def test_with_the_app_url_a_reminder_is_declarative_and_leads_to_its_task(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "safari")
    now = dt.datetime(2026, 3, 8, 9, 0, tzinfo=dt.UTC)
    with push_runtime.engine.begin() as c:
        task = add_task(c, user, None, title="Call the dentist", remind_at=now)

    send_reminders(
        push_runtime.engine, now=now, grace=dt.timedelta(minutes=15), links=AppLinks(APP)
    )
    work(push_runtime)

    [payload] = receiver.payloads("safari")
    assert payload == {
        "web_push": 8030,
        "notification": {
            "title": "Reminder: Call the dentist",
            "body": "Call the dentist",
            "tag": f"task-{task}",
            "data": {"taskId": str(task), "remindAt": now.isoformat()},
            "navigate": f"{APP}/tasks/{task}",
        },
        "mutable": True,
    }


def test_with_the_app_url_the_export_ready_notification_leads_to_the_export(
    push_runtime: Runtime,
) -> None:
    settings = push_runtime.settings.model_copy(update={"app_url": APP})
    runtime = dataclasses.replace(push_runtime, settings=settings)
    user = new_user(runtime)
    export = request_export(runtime.engine, user, "csv").job

    work(runtime, "exports")

    with runtime.engine.connect() as c:
        body = c.scalar(sa.text("SELECT body::jsonb FROM notifications WHERE source = 'export'"))
    assert body == {
        "web_push": 8030,
        "notification": {
            "title": "Your export is ready",
            "body": "Your CSV export is ready to download.",
            "tag": f"export-{export.id}",
            "navigate": f"{APP}/exports/{export.id}",
        },
        "mutable": True,
    }
