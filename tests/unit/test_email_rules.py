from __future__ import annotations

import datetime as dt
import uuid

import pytest

from planner_jobs.domain.email import (
    FORMAT_LABELS,
    MAX_ATTEMPTS,
    Outcome,
    address_problem,
    classify,
    ready_message,
    retry_delay,
)
from planner_jobs.domain.exports.formats import FORMATS

NOW = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, Outcome.SENT),
        (None, Outcome.RETRY),
        (421, Outcome.RETRY),
        (451, Outcome.RETRY),
        (452, Outcome.RETRY),
        (550, Outcome.FAILED),
        (553, Outcome.FAILED),
        (554, Outcome.FAILED),
    ],
)
def test_a_reply_code_means_sent_retry_or_failed(code: int | None, outcome: Outcome) -> None:
    assert classify(code) is outcome


def test_retries_wait_longer_each_time_then_give_up() -> None:
    waits = [retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)]

    assert waits[-1] is None
    seconds = [w.total_seconds() for w in waits[:-1] if w is not None]
    assert seconds == sorted(seconds)
    assert seconds[0] >= 30
    assert sum(seconds) < 4 * 3600


@pytest.mark.parametrize(
    "address",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@localhost",
        "Ada <ada@example.com>",
        "ada@example.com\r\nBcc: eve@example.com",
        "a@b.example, c@d.example",
        "x" * 250 + "@e.io",
    ],
)
def test_an_address_that_is_not_one_plain_address_is_refused(address: str) -> None:
    assert address_problem(address) is not None


@pytest.mark.parametrize("address", ["ada@example.com", "a.b+tag@sub.example.co.uk"])
def test_a_plain_address_is_taken(address: str) -> None:
    assert address_problem(address) is None


def test_every_export_format_has_a_label_for_the_message() -> None:
    assert set(FORMAT_LABELS) == set(FORMATS)


def test_a_sender_with_a_name_beyond_ascii_is_encoded() -> None:
    message = ready_message(
        export_id=uuid.uuid4(),
        export_format="csv",
        to="ada@example.com",
        sender="Planificateur Proactif \u00e9t\u00e9 <no-reply@planner.example>",
        app_url=None,
        now=NOW,
    )

    assert message["From"].startswith("=?utf-8?")
    assert message["From"].endswith("<no-reply@planner.example>")
    assert message.as_bytes().isascii()


def test_without_the_app_url_the_message_names_no_link_at_all() -> None:
    export_id = uuid.uuid4()

    message = ready_message(
        export_id=export_id,
        export_format="json",
        to="ada@example.com",
        sender="Proactive Planner <no-reply@localhost>",
        app_url=None,
        now=NOW,
    )

    plain, markup = message.get_payload()  # type: ignore[misc]
    text = plain.get_payload(decode=True).decode()
    assert (plain.get_content_type(), markup.get_content_type()) == ("text/plain", "text/html")
    assert "JSON export" in text
    assert "http" not in text
    assert message["Message-ID"] == f"<export-{export_id}@localhost>"
    assert message["Date"] == "Fri, 04 Dec 2026 09:30:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
