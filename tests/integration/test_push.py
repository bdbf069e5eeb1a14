"""Notifications end to end: a real receiver checks VAPID and TTL and decrypts every message."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from planner_jobs.api.app import create_app
from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.jobs import notifications
from planner_jobs.jobs.notifications import BadNotification
from planner_jobs.logs import fields_of
from planner_jobs.runtime import Runtime
from tests.integration.conftest import (
    bearer,
    deliveries,
    job_statuses,
    new_user,
    outbox_size,
    raise_one,
    subscribe,
    subscription_count,
    time_passes,
    work,
)
from tests.push_receiver import Answer, PushReceiver

PAYLOAD = {"title": "Hello ☀", "body": 'Quotes " and\nnewlines, & <tags>'}
EVERY_PROTOCOL = pytest.mark.parametrize(
    "receiver", ["http", "https", "https-http1"], indirect=True
)


@EVERY_PROTOCOL
def test_a_notification_reaches_every_subscription_of_its_user(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user, other = new_user(push_runtime), new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "laptop")
    subscribe(push_runtime, user, receiver, "phone")
    subscribe(push_runtime, other, receiver, "someone-else")

    raise_one(push_runtime, user, PAYLOAD)
    work(push_runtime)

    assert receiver.errors == []
    assert receiver.payloads("laptop") == [PAYLOAD]
    assert receiver.payloads("phone") == [PAYLOAD]
    assert receiver.payloads("someone-else") == []
    message = receiver.received[0]
    assert message.headers["ttl"] == "3600"
    assert message.headers["urgency"] == "normal"
    assert message.claims["sub"] == "mailto:admin@localhost"
    assert job_statuses(push_runtime) == ["succeeded"]
    assert [status for status, *_ in deliveries(push_runtime)] == ["delivered", "delivered"]
    # HTTP/2 where the push service offers it (by TLS ALPN), HTTP/1.1 where it does not.
    assert set(receiver.versions) == ({"2"} if "h2" in (receiver.alpn or ()) else {"1.1"})


@pytest.mark.parametrize("receiver", ["https"], indirect=True)
def test_over_http2_every_message_of_a_burst_shares_one_connection(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    names = [f"device-{n}" for n in range(40)]
    for name in names:
        subscribe(push_runtime, user, receiver, name)

    raise_one(push_runtime, user, PAYLOAD)
    work(push_runtime)

    assert receiver.errors == []
    assert all(receiver.payloads(name) == [PAYLOAD] for name in names)
    assert receiver.versions == ["2"] * len(names)
    assert len(receiver.clients) == 1  # 40 streams multiplexed, not 40 connections


@EVERY_PROTOCOL
@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_deleted_and_the_others_still_get_it(
    push_runtime: Runtime, receiver: PushReceiver, status: int
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "gone")
    subscribe(push_runtime, user, receiver, "alive")
    receiver.script("gone", Answer(status=status))

    raise_one(push_runtime, user, PAYLOAD)
    work(push_runtime)

    assert receiver.payloads("alive") == [PAYLOAD]
    assert subscription_count(push_runtime) == 1
    assert push_runtime.metrics.subscriptions_deleted._value.get() == 1
    assert job_statuses(push_runtime) == ["succeeded"]


@pytest.mark.parametrize(
    ("receiver", "failure"),
    [
        ("http", Answer(status=500)),
        ("http", Answer(status=503)),
        ("http", Answer(status=429, retry_after="120")),
        ("http", Answer(close=True)),
        ("https", Answer(status=429, retry_after="120")),
        # Slower than the client's timeout (and a 503 when it answers at last, which the client
        # no longer hears). Over HTTP/2: over HTTP/1.1 the other subscription's request may wait
        # for this first answer and time out too (the next test).
        ("https", Answer(status=503, delay=2.0)),
    ],
    ids=["500", "503", "429", "closed", "429-http2", "slow-http2"],
    indirect=["receiver"],
)
def test_a_transient_failure_is_retried_for_that_subscription_alone(
    push_runtime: Runtime, receiver: PushReceiver, failure: Answer
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "flaky")
    subscribe(push_runtime, user, receiver, "fine")
    # Twice: libcurl resends a request at once, on a new connection, when the reused connection
    # it went on closes before any byte of an answer (it cannot tell that from a keep-alive
    # connection the server closed while idle); the second failure must reach the sender.
    receiver.script("flaky", failure, failure)
    before = dt.datetime.now(dt.UTC)

    raise_one(push_runtime, user, PAYLOAD)
    work(push_runtime)
    receiver.unscript("flaky")  # the push service is well again

    assert receiver.payloads("fine") == [PAYLOAD]
    assert receiver.payloads("flaky") == []
    with push_runtime.engine.connect() as c:
        next_attempt, last_status, last_error = c.execute(
            sa.text(
                "SELECT next_attempt_at, last_status, last_error FROM push_deliveries"
                " WHERE status = 'pending'"
            )
        ).one()
        scheduled = c.scalar(sa.text("SELECT scheduled_at FROM procrastinate_jobs"))
    if failure.delay or failure.close:  # no answer heard
        assert last_status is None
        assert last_error.startswith("timed out" if failure.delay else "connection failed: ")
        assert "curl.se" not in last_error  # the reason, without libcurl's boilerplate
    else:
        assert last_status == failure.status
    wait = 120 if failure.retry_after else 5
    assert next_attempt >= before + dt.timedelta(seconds=wait)
    assert scheduled == next_attempt  # the job comes back exactly then
    assert job_statuses(push_runtime) == ["todo"]

    time_passes(push_runtime)
    work(push_runtime)

    assert receiver.payloads("flaky") == [PAYLOAD]
    assert receiver.payloads("fine") == [PAYLOAD]  # accepted once, never sent again
    assert receiver.requests["fine"] == 1
    assert job_statuses(push_runtime) == ["succeeded"]
    assert subscription_count(push_runtime) == 2


@pytest.mark.parametrize("receiver", ["http", "https-http1"], indirect=True)
def test_over_http1_a_slow_first_answer_may_hold_the_others_but_none_is_sent_twice(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    """The cost of waiting to learn whether an origin multiplexes (PIPEWAIT, push.http): over
    HTTP/1.1 the first requests to an origin wait for its first answer. If that answer is too
    slow, they time out with it; each subscription is still delivered to exactly once."""
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "slow")
    subscribe(push_runtime, user, receiver, "fine")
    receiver.script("slow", Answer(status=503, delay=2.0))

    raise_one(push_runtime, user, PAYLOAD)
    work(push_runtime)
    assert receiver.payloads("slow") == []
    assert job_statuses(push_runtime) == ["todo"]

    time_passes(push_runtime)
    work(push_runtime)

    assert receiver.payloads("slow") == [PAYLOAD]
    assert receiver.payloads("fine") == [PAYLOAD]
    assert job_statuses(push_runtime) == ["succeeded"]


class _ClockBehind:
    """`datetime` as seen by a worker whose clock runs an hour behind the database's."""

    class datetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            return dt.datetime.now(tz) - dt.timedelta(hours=1)

    timedelta = dt.timedelta
    UTC = dt.UTC


@pytest.mark.timeout(60)  # the way it failed: a worker rescheduling its job forever
def test_a_worker_with_a_wrong_clock_sends_at_once_and_retries_on_the_database_clock(
    push_runtime: Runtime, receiver: PushReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications, "dt", _ClockBehind)
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "flaky")
    subscribe(push_runtime, user, receiver, "fine")
    receiver.script("flaky", Answer(status=503))

    raise_one(push_runtime, user, PAYLOAD)
    work(push_runtime)

    assert receiver.payloads("fine") == [PAYLOAD]
    with push_runtime.engine.connect() as c:
        retry_in = c.scalar(
            sa.text("SELECT next_attempt_at - now() FROM push_deliveries WHERE status = 'pending'")
        )
    assert dt.timedelta(seconds=1) < retry_in <= dt.timedelta(seconds=5)
    assert job_statuses(push_runtime) == ["todo"]


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_a_refusal_of_our_request_is_final_logged_and_keeps_the_subscription(
    push_runtime: Runtime, receiver: PushReceiver, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "picky")
    receiver.script("picky", Answer(status=status, body="UnauthorizedRegistration"))

    raise_one(push_runtime, user, PAYLOAD)
    with caplog.at_level(logging.ERROR):
        work(push_runtime)

    assert deliveries(push_runtime) == [("rejected", 1, status)]
    assert subscription_count(push_runtime) == 1
    assert job_statuses(push_runtime) == ["succeeded"]
    [refused] = [r for r in caplog.records if r.getMessage() == "push refused"]
    assert fields_of(refused) == {  # an event with fields an operator can filter on
        "host": receiver.host.split(":")[0],
        "status": status,
        "subscription_id": fields_of(refused)["subscription_id"],
        "detail": "UnauthorizedRegistration",
    }


def test_a_subscription_that_keeps_failing_is_given_up_eventually(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "down")
    receiver.script("down", *[Answer(status=500)] * 20)

    raise_one(push_runtime, user, PAYLOAD)
    for _ in range(8):
        work(push_runtime)
        time_passes(push_runtime)

    assert deliveries(push_runtime) == [("failed", 8, 500)]
    assert job_statuses(push_runtime) == ["succeeded"]
    assert receiver.requests["down"] == 8


def test_a_notification_with_a_bad_topic_fails_its_job_and_sends_nothing(
    push_runtime: Runtime, receiver: PushReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "phone")
    with push_runtime.engine.begin() as c:
        defer_in_transaction(
            c,
            push_runtime.job_app,
            "notifications.send",
            userId=str(user),
            payload=PAYLOAD,
            topic="t\r\nX-Injected: 1",
        )

    work(push_runtime)

    assert job_statuses(push_runtime) == ["failed"]
    assert receiver.requests == {}
    assert deliveries(push_runtime) == []
    assert outbox_size(push_runtime) == 0
    assert "topic: must be 1 to 32 characters" in caplog.text


def test_a_payload_too_large_is_refused_before_anything_is_sent(push_runtime: Runtime) -> None:
    user = new_user(push_runtime)

    with pytest.raises(BadNotification, match="payload: is 4023 bytes of JSON; at most 3993 fit"):
        raise_one(push_runtime, user, {"title": "x", "body": "y" * 4000})
    assert outbox_size(push_runtime) == 0
    assert job_statuses(push_runtime) == []


@pytest.fixture
def client(push_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(push_runtime)) as client:
        yield client


def browser_json(receiver: PushReceiver, name: str, **overrides: object) -> dict[str, object]:
    browser = receiver.browser(name)
    body: dict[str, object] = {
        "endpoint": receiver.endpoint(name),
        "expirationTime": None,
        "keys": {"p256dh": browser.p256dh, "auth": browser.auth},
    }
    body.update(overrides)
    return body


def test_subscribing_creates_then_takes_over_an_endpoint(
    client: TestClient, push_runtime: Runtime, receiver: PushReceiver
) -> None:
    ada, bob = new_user(push_runtime), new_user(push_runtime)
    body = browser_json(receiver, "shared")

    first = client.post("/api/push-subscriptions", json=body, headers=bearer(push_runtime, ada))
    again = client.post("/api/push-subscriptions", json=body, headers=bearer(push_runtime, bob))

    assert first.status_code == 201
    assert again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    with push_runtime.engine.connect() as c:
        owner = c.scalar(sa.text("SELECT user_id FROM push_subscriptions"))
    assert owner == bob


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "https://evil.example.com/push"}, "endpoint"),
        ({"endpoint": "http://fcm.googleapis.com/x"}, "endpoint"),
        ({"endpoint": "https://169.254.169.254/latest"}, "endpoint"),
        ({"endpoint": "https://u:p@fcm.googleapis.com/x"}, "endpoint"),
        # Python's URL parser drops these, so the host checked would not be the one requested.
        ({"endpoint": "https://fcm.googleapis.com/fcm/send/a\tb"}, "endpoint"),
        ({"endpoint": "https://fcm.googleapis.com/fcm/\r\nsend/x"}, "endpoint"),
        ({"endpoint": "https://fcm.googleapis.\ncom/x"}, "endpoint"),
        ({"endpoint": "https://fcm.googleapis.com/fcm send/x"}, "endpoint"),
        ({"keys": {"p256dh": "BAAA", "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}, "keys.p256dh"),
        ({"keys": {"p256dh": "B" + "A" * 86, "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}, "keys.p256dh"),
        ({"keys": {"p256dh": None, "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}, "keys.p256dh"),
        ({"keys": {"auth": "BTBZMqHH6r4Tts7J_aSIgg"}}, "keys.p256dh"),
    ],
)
def test_a_bad_subscription_is_422_naming_the_field(
    client: TestClient,
    push_runtime: Runtime,
    receiver: PushReceiver,
    change: dict[str, object],
    field: str,
) -> None:
    body = browser_json(receiver, "bad", **change)

    response = client.post(
        "/api/push-subscriptions", json=body, headers=bearer(push_runtime, new_user(push_runtime))
    )

    assert response.status_code == 422
    assert field in response.json()["message"]
    assert subscription_count(push_runtime) == 0


def test_an_auth_secret_of_the_wrong_length_is_422(
    client: TestClient, push_runtime: Runtime, receiver: PushReceiver
) -> None:
    body = browser_json(receiver, "bad")
    body["keys"] = {**body["keys"], "auth": "c2hvcnQ"}  # type: ignore[dict-item]

    response = client.post(
        "/api/push-subscriptions", json=body, headers=bearer(push_runtime, new_user(push_runtime))
    )

    assert response.status_code == 422
    assert "keys.auth" in response.json()["message"]


def test_unsubscribing_is_for_the_owner_only(
    client: TestClient, push_runtime: Runtime, receiver: PushReceiver
) -> None:
    ada, bob = new_user(push_runtime), new_user(push_runtime)
    created = client.post(
        "/api/push-subscriptions",
        json=browser_json(receiver, "ada"),
        headers=bearer(push_runtime, ada),
    ).json()

    assert (
        client.delete(
            f"/api/push-subscriptions/{created['id']}", headers=bearer(push_runtime, bob)
        ).status_code
        == 404
    )
    assert (
        client.delete(
            f"/api/push-subscriptions/{created['id']}", headers=bearer(push_runtime, ada)
        ).status_code
        == 204
    )
    assert subscription_count(push_runtime) == 0
    assert client.delete(f"/api/push-subscriptions/{created['id']}").status_code == 401


def test_the_public_key_needs_no_token(client: TestClient, push_runtime: Runtime) -> None:
    response = client.get("/api/push/public-key")

    assert response.status_code == 200
    assert response.json() == {"publicKey": push_runtime.push.keys.application_server_key}


def test_the_worker_never_requests_an_endpoint_off_the_allowlist(
    push_runtime: Runtime, receiver: PushReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The main app may insert subscriptions itself, past the API's checks: every send checks
    the endpoint again, and a refused one is final, logged and counted, never requested."""
    user = new_user(push_runtime)
    subscribe(push_runtime, user, receiver, "allowed")
    refused = {
        "localhost": receiver.endpoint("by-name").replace("127.0.0.1", "localhost"),
        "internal": "https://10.0.0.7/metadata",
        "cr-lf": receiver.endpoint("injected") + "\r\nX: y",
    }
    for name, endpoint in refused.items():
        with push_runtime.engine.begin() as c:
            receiver.subscribe(c, user, name, endpoint=endpoint)

    raise_one(push_runtime, user, PAYLOAD)
    with caplog.at_level(logging.ERROR):
        work(push_runtime)

    assert receiver.payloads("allowed") == [PAYLOAD]
    assert sum(receiver.requests.values()) == 1
    assert sorted(status for status, *_ in deliveries(push_runtime)) == [
        "delivered",
        "rejected",
        "rejected",
        "rejected",
    ]
    with push_runtime.engine.connect() as c:
        errors = list(
            c.scalars(sa.text("SELECT last_error FROM push_deliveries WHERE status = 'rejected'"))
        )
    assert all(error.startswith("not sent: ") for error in errors), errors
    assert subscription_count(push_runtime) == 4  # kept: an allowlist may change by mistake
    counted = sum(
        sample.value
        for metric in push_runtime.metrics.registry.collect()
        if metric.name == "planner_jobs_pushes"
        for sample in metric.samples
        if sample.labels.get("outcome") == "refused" and sample.name.endswith("_total")
    )
    assert counted == 3
    assert sum("not sent" in record.getMessage() for record in caplog.records) == 3
    assert job_statuses(push_runtime) == ["succeeded"]


def test_an_answer_slower_than_the_jobs_patience_is_recorded_when_it_comes_and_not_resent(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    """The job leaves a slow request to finish on its own (so it frees its slot); the answer,
    a 201 a second later, is recorded then, and the retry the job asked for sends nothing."""
    import dataclasses

    from planner_jobs.push.service import PushService

    patient = PushService(
        push_runtime.push.keys,
        subject=push_runtime.settings.vapid_subject,
        ttl=3600,
        allowed_hosts=push_runtime.settings.push_allowed_hosts,
        timeout=5.0,
        patience=0.2,
    )
    runtime = dataclasses.replace(push_runtime, push=patient)
    user = new_user(runtime)
    subscribe(runtime, user, receiver, "slowpoke")
    subscribe(runtime, user, receiver, "quick")
    receiver.script("slowpoke", Answer(status=201, delay=1.0))

    raise_one(runtime, user, PAYLOAD)
    work(runtime)  # the burst ends once the late answer is recorded (the service closes)

    assert deliveries(runtime) == [("delivered", 1, 201), ("delivered", 1, 201)]
    assert job_statuses(runtime) == ["todo"]  # it asked to come back while one was out
    with runtime.engine.connect() as c:  # behind fresh work
        assert c.scalar(sa.text("SELECT priority FROM procrastinate_jobs")) == -1
    time_passes(runtime)
    work(runtime)
    assert receiver.requests["slowpoke"] == 1
    assert receiver.payloads("slowpoke") == [PAYLOAD]
    assert job_statuses(runtime) == ["succeeded"]
