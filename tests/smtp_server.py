"""A real SMTP server for the tests (aiosmtpd, on 127.0.0.1 in a thread of its own) that keeps
what it receives and can be told how to answer the next messages: accept, 451 (try again
later), 550 (refused for good), or drop the connection without a word."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        """The text of the `text/<subtype>` part."""
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None
        assert found.get_content_subtype() == subtype
        return str(found.get_content())  # type: ignore[attr-defined]


class SmtpServer:
    """`with SmtpServer() as server:` ... `server.url` is its PLANNER_SMTP_URL."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[str] = []  # what the next DATA commands get ("451", "550", "drop")
        self.connections = 0
        self._lock = threading.Lock()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def answer_next(self, *answers: str) -> None:
        with self._lock:
            self.answers.extend(answers)

    def _next_answer(self) -> str | None:
        with self._lock:
            return self.answers.pop(0) if self.answers else None

    def down(self) -> None:
        """The server goes away: its port refuses connections until `up()`."""
        self._controller.stop()

    def up(self) -> None:
        self._controller = Controller(
            self._controller.handler, hostname="127.0.0.1", port=self.port
        )
        self._controller.start()

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(AssertionError):  # already stopped (down())
            self._controller.stop()


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, smtp: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.server._lock:
            self.server.connections += 1
        return responses

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        answer = self.server._next_answer()
        if answer == "drop":
            smtp.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        if answer == "451":
            return "451 4.3.0 try again later"
        if answer == "550":
            return "550 5.1.1 no such mailbox here"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.server._lock:
            self.server.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message)
            )
        return "250 2.0.0 OK queued"
