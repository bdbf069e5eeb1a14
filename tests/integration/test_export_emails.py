"""The export-ready e-mail, through a real SMTP server (aiosmtpd) that can be told to answer 451,
550 or drop the connection: sent once, retried when the failure is temporary, recorded when it
is final, and never in the way of the export itself."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from planner_jobs.engine.defer import defer_in_transaction
from planner_jobs.jobs.exports import request_export
from planner_jobs.runtime import Runtime
from tests.data import add_user, utc
from tests.integration.conftest import PASSWORD, client_of, subscribe, time_passes, work
from tests.push_receiver import PushReceiver
from tests.smtp_server import SmtpServer

APP = "https://planner.example"
SENDER = "Proactive Planner <no-reply@planner.example>"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def mailing(runtime: Runtime, smtp: SmtpServer, **settings: Any) -> Runtime:
    """The runtime with a mail server (and the web app's URL, a sender), as configured."""
    values = {"smtp_url": SecretStr(smtp.url), "email_from": SENDER, "app_url": APP, **settings}
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=values))


def user(runtime: Runtime, *, email: str | None = None) -> uuid.UUID:
    with runtime.engine.begin() as c:
        return add_user(c, created_at=utc("2026-03-01T08:00"), email=email)


def exported(runtime: Runtime, owner: uuid.UUID, fmt: str = "csv") -> uuid.UUID:
    """An export of `owner`'s, built; its id."""
    export = request_export(runtime.engine, owner, fmt).job
    work(runtime, "exports")
    return export.id


def email_row(runtime: Runtime, export_id: uuid.UUID) -> Any:
    with runtime.engine.connect() as c:
        return c.execute(
            sa.text("SELECT * FROM export_emails WHERE export_id = :e"), {"e": export_id}
        ).one_or_none()


def export_status(runtime: Runtime, export_id: uuid.UUID) -> str:
    with runtime.engine.connect() as c:
        return str(
            c.scalar(sa.text("SELECT status FROM export_jobs WHERE id = :e"), {"e": export_id})
        )


def sending_jobs(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as c:
        return list(
            c.scalars(
                sa.text(
                    "SELECT status FROM procrastinate_jobs WHERE task_name = 'emails.send'"
                    " ORDER BY id"
                )
            )
        )


def counted(runtime: Runtime, outcome: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "planner_jobs_emails_total", {"outcome": outcome}
    )
    return value or 0.0


def test_a_completed_export_is_emailed_once_in_text_and_html_linking_to_its_page(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    runtime = mailing(runtime, smtp)
    ada = user(runtime, email="ada@example.com")
    export_id = exported(runtime, ada, "markdown")

    work(runtime)
    work(runtime)  # run again: nothing more is sent

    [received] = smtp.received
    message = received.message
    assert (received.sender, received.recipients) == (
        "no-reply@planner.example",
        ["ada@example.com"],
    )
    assert message["Subject"] == "Your Proactive Planner export is ready"
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.com"
    assert message.get_content_type() == "multipart/alternative"
    text, markup = received.part("plain"), received.part("html")
    page = f"{APP}/exports/{export_id}"
    assert "Markdown export" in text
    assert page in text
    assert "Markdown export" in markup
    assert f'href="{page}"' in markup
    with runtime.engine.connect() as c:
        signed = c.scalar(
            sa.text("SELECT download_url FROM export_jobs WHERE id = :e"), {"e": export_id}
        )
    assert signed
    assert signed not in message.as_string()
    assert "signature=" not in message.as_string().lower()
    row = email_row(runtime, export_id)
    assert (row.status, row.attempts, row.address) == ("sent", 1, "ada@example.com")
    assert row.reply.startswith("250")
    assert counted(runtime, "sent") == 1


@pytest.mark.parametrize(
    ("policy", "subscribed", "emailed"),
    [
        ("no_push", False, True),
        ("no_push", True, False),
        ("always", True, True),
        ("never", False, False),
    ],
)
def test_who_is_emailed_follows_the_policy(
    push_runtime: Runtime,
    receiver: PushReceiver,
    smtp: SmtpServer,
    policy: str,
    subscribed: bool,
    emailed: bool,
) -> None:
    runtime = mailing(push_runtime, smtp, export_email=policy)
    owner = user(runtime)
    if subscribed:
        subscribe(runtime, owner, receiver, "phone")
    export_id = exported(runtime, owner)

    work(runtime)

    assert len(receiver.payloads("phone")) == int(subscribed)  # the push goes out either way
    assert len(smtp.received) == int(emailed)
    assert (email_row(runtime, export_id) is not None) is emailed


def test_without_a_mail_server_nothing_is_emailed(runtime: Runtime, smtp: SmtpServer) -> None:
    runtime = mailing(runtime, smtp, smtp_url=None)
    export_id = exported(runtime, user(runtime))

    work(runtime)

    assert smtp.received == []
    assert email_row(runtime, export_id) is None
    assert export_status(runtime, export_id) == "complete"


@pytest.mark.parametrize("answer", ["451", "drop"])
def test_a_temporary_failure_is_retried_later_and_sent_once(
    runtime: Runtime, smtp: SmtpServer, answer: str
) -> None:
    runtime = mailing(runtime, smtp)
    export_id = exported(runtime, user(runtime))
    smtp.answer_next(answer)

    work(runtime)

    row = email_row(runtime, export_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert smtp.received == []
    assert sending_jobs(runtime) == ["todo"]  # back at the row's next attempt
    assert export_status(runtime, export_id) == "complete"
    time_passes(runtime)
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE export_emails SET next_attempt_at = now()"))

    work(runtime)

    assert len(smtp.received) == 1
    assert (email_row(runtime, export_id).status, email_row(runtime, export_id).attempts) == (
        "sent",
        2,
    )
    assert (counted(runtime, "retry"), counted(runtime, "sent")) == (1, 1)


def test_a_permanent_refusal_is_recorded_and_never_retried(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    runtime = mailing(runtime, smtp)
    export_id = exported(runtime, user(runtime))
    smtp.answer_next("550")

    work(runtime)
    time_passes(runtime)
    work(runtime)

    row = email_row(runtime, export_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.reply.startswith("550")
    assert smtp.received == []
    assert sending_jobs(runtime) == ["succeeded"]
    assert export_status(runtime, export_id) == "complete"
    assert counted(runtime, "failed") == 1


def test_a_server_that_is_down_holds_every_email_until_it_is_back(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    runtime = mailing(runtime, smtp, export_email="always")
    exports = [exported(runtime, user(runtime)) for _ in range(3)]
    smtp.down()

    work(runtime)

    attempts = sorted(email_row(runtime, e).attempts for e in exports)
    assert attempts == [0, 0, 1]  # the first found the server away; the others wait with it
    assert all(export_status(runtime, e) == "complete" for e in exports)
    smtp.up()
    time_passes(runtime)
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE export_emails SET next_attempt_at = now()"))

    work(runtime)

    assert sorted(r.recipients[0] for r in smtp.received) == sorted(
        email_row(runtime, e).address for e in exports
    )
    assert smtp.connections == 1  # one connection for all three


def test_an_address_no_server_takes_is_recorded_without_a_try(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    runtime = mailing(runtime, smtp)
    export_id = exported(runtime, user(runtime, email="not an address"))

    work(runtime)

    row = email_row(runtime, export_id)
    assert row.status == "failed"
    assert "is not one e-mail address" in row.reply
    assert smtp.connections == 0


def test_a_second_sending_job_finds_nothing_to_send_again(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    runtime = mailing(runtime, smtp)
    exported(runtime, user(runtime))
    work(runtime)
    with runtime.engine.begin() as c:
        defer_in_transaction(c, runtime.job_app, "emails.send")

    work(runtime)

    assert len(smtp.received) == 1
    assert sending_jobs(runtime) == ["succeeded", "succeeded"]


def test_the_dashboard_shows_each_exports_email(runtime: Runtime, smtp: SmtpServer) -> None:
    runtime = mailing(runtime, smtp, export_email="always")
    refused, sent = exported(runtime, user(runtime)), exported(runtime, user(runtime))
    smtp.answer_next("550")
    work(runtime)
    delayed = exported(runtime, user(runtime))
    smtp.answer_next("451")
    work(runtime)

    with client_of(runtime, admin_password=SecretStr(PASSWORD)) as client:
        page = client.get("/admin/exports", auth=("admin", PASSWORD)).text

    rows = {e: page[page.index(str(e)) :].split("</tr>")[0] for e in (refused, sent, delayed)}
    assert "failed</span> 550 5.1.1 no such mailbox here" in rows[refused]
    assert "sent</span> 250" in rows[sent]
    assert re.search(r"waiting</span> 1 tried, next [\d.]+ s from now", rows[delayed])
    assert "451 4.3.0 try again later" in rows[delayed]
