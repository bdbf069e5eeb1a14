from __future__ import annotations

import datetime as dt

import pytest

from planner_jobs.domain.push import (
    MAX_ATTEMPTS,
    MAX_PLAINTEXT,
    Outcome,
    classify,
    endpoint_problem,
    origin,
    parse_retry_after,
    retry_delay,
)
from planner_jobs.domain.reminders import ReminderDecision, reminder_decision
from planner_jobs.settings import DEFAULT_PUSH_ALLOWED_HOSTS

NOW = dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://web.push.apple.com/QGZ1ZmRT",
        "https://db5p.notify.windows.com/w/?token=AwYAAAB",
        "https://fcm.googleapis.com:443/fcm/send/x",
    ],
)
def test_the_public_push_services_are_allowed(endpoint: str) -> None:
    assert endpoint_problem(endpoint, DEFAULT_PUSH_ALLOWED_HOSTS) is None


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("http://fcm.googleapis.com/fcm/send/x", "https"),
        ("ftp://fcm.googleapis.com/x", "https"),
        ("https://evil.example.com/push", "not an allowed push service"),
        ("https://push.apple.com.evil.example/x", "not an allowed push service"),
        ("https://evilfcm.googleapis.com/x", "not an allowed push service"),
        ("https://user:pw@fcm.googleapis.com/x", "credentials"),
        ("https://fcm.googleapis.com@169.254.169.254/x", "credentials"),
        ("https://169.254.169.254/latest/meta-data", "IP address"),
        ("https://[::1]/x", "IP address"),
        ("https://fcm.googleapis.com:8443/x", "port 8443"),
        ("https:///nohost", "https"),
        ("not a url", "https"),
        ("https://fcm.googleapis.com/" + "a" * 3000, "too long"),
        ("https://[bad/x", "valid URL"),
    ],
)
def test_everything_else_is_refused_with_a_reason(endpoint: str, reason: str) -> None:
    problem = endpoint_problem(endpoint, DEFAULT_PUSH_ALLOWED_HOSTS)

    assert problem is not None
    assert reason in problem


def test_a_local_receiver_listed_with_its_port_may_use_plain_http() -> None:
    allowed = (*DEFAULT_PUSH_ALLOWED_HOSTS, "127.0.0.1:8088")

    assert endpoint_problem("http://127.0.0.1:8088/push/a", allowed) is None
    assert endpoint_problem("https://127.0.0.1:8088/push/a", allowed) is None
    assert endpoint_problem("http://127.0.0.1:8089/push/a", allowed) is not None
    assert endpoint_problem("http://127.0.0.1/push/a", allowed) is not None


def test_the_vapid_audience_is_the_origin_without_credentials_or_path() -> None:
    assert origin("https://fcm.googleapis.com/fcm/send/x?y=1") == "https://fcm.googleapis.com"
    assert origin("http://127.0.0.1:8088/push/a") == "http://127.0.0.1:8088"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, Outcome.DELIVERED),
        (200, Outcome.DELIVERED),
        (404, Outcome.GONE),
        (410, Outcome.GONE),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (None, Outcome.RETRY),
        (400, Outcome.REJECTED),
        (401, Outcome.REJECTED),
        (403, Outcome.REJECTED),
        (413, Outcome.REJECTED),
    ],
)
def test_push_service_answers(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_retries_back_off_honour_retry_after_and_end() -> None:
    assert retry_delay(1) == dt.timedelta(seconds=5)
    assert retry_delay(2) == dt.timedelta(seconds=30)
    assert retry_delay(1, retry_after=120) == dt.timedelta(seconds=120)
    assert retry_delay(3, retry_after=1) == dt.timedelta(seconds=120)
    assert retry_delay(MAX_ATTEMPTS) is None


def test_retry_after_is_seconds_or_an_http_date() -> None:
    assert parse_retry_after("120", now=NOW) == 120
    assert parse_retry_after("Sun, 08 Mar 2026 12:01:00 GMT", now=NOW) == 60
    assert parse_retry_after("Sun, 08 Mar 2026 11:00:00 GMT", now=NOW) == 0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


def test_the_largest_plaintext_fits_one_4096_byte_record() -> None:
    assert MAX_PLAINTEXT == 3993


GRACE = dt.timedelta(minutes=15)


@pytest.mark.parametrize(
    ("remind_at", "completed", "decision"),
    [
        (NOW + dt.timedelta(seconds=1), False, ReminderDecision.WAIT),
        (NOW, False, ReminderDecision.SEND),
        (NOW - GRACE, False, ReminderDecision.SEND),
        (NOW - GRACE - dt.timedelta(microseconds=1), False, ReminderDecision.SKIP),
        (NOW - dt.timedelta(minutes=1), True, ReminderDecision.SKIP),
    ],
)
def test_a_reminder_is_sent_within_its_grace_and_never_late(
    remind_at: dt.datetime, completed: bool, decision: ReminderDecision
) -> None:
    assert reminder_decision(remind_at, completed=completed, now=NOW, grace=GRACE) is decision


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/a\tb",
        "https://fcm.googleapis.com/fcm/\r\nsend/x",
        "https://fcm.googleapis.\ncom/x",
        "https://fcm.googleapis.com/fcm send/x",
        "https://fcm.googleapis.com/fcm/séñd/x",
    ],
)
def test_an_endpoint_the_url_parser_would_read_differently_is_refused(endpoint: str) -> None:
    problem = endpoint_problem(endpoint, DEFAULT_PUSH_ALLOWED_HOSTS)

    assert problem == "the endpoint must be a URL of printable ASCII characters, without spaces"
