"""The SMTP client: aiosmtplib (docs/decisions.md), one connection reused for a batch of
messages and opened again when the server closed it.

Every failure comes back as a `Refusal`: the server's reply code (None when there was no reply:
the connection was refused, timed out or lost) and one line saying what happened, which the
rules (`domain.email.classify`) turn into sent, retry or failed.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import Message
from types import TracebackType

import aiosmtplib

from planner_jobs.settings import SmtpServer

TIMEOUT = 30.0  # seconds for each step of the exchange


@dataclass(frozen=True)
class Refusal(Exception):
    code: int | None  # the server's reply code; None: no reply
    reason: str

    def __str__(self) -> str:
        return self.reason


class Mailer:
    """Sends messages through one server, on one connection (async context manager)."""

    def __init__(
        self,
        server: SmtpServer,
        *,
        timeout: float = TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._server = server
        self._timeout = timeout
        self._tls_context = tls_context
        self._client: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> Mailer:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, message: Message) -> str:
        """Hand `message` to the server; its reply ("250 ..."), or `Refusal`."""
        try:
            client = await self._connected()
            refused, reply = await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            raise Refusal(first.code, f"{first.code} {first.message}") from None
        except aiosmtplib.SMTPNotSupported as exc:  # e.g. a non-ASCII address, no SMTPUTF8
            raise Refusal(550, f"the server cannot take it: {exc}") from None
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop_if_closed()
            raise Refusal(exc.code, f"{exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            where = f"{self._server.host}:{self._server.port}"
            what = str(exc) or type(exc).__name__
            raise Refusal(None, f"no answer from {where}: {what}") from None
        if refused:  # one recipient only: refused means not sent
            code, text = next(iter(refused.values()))
            raise Refusal(code, f"{code} {text}")
        return f"250 {reply}"

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        server = self._server
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.tls,
            start_tls=server.starttls,
            timeout=self._timeout,
            tls_context=self._tls_context,
        )
        await client.connect()
        self._client = client
        return client

    async def _drop_if_closed(self) -> None:
        """After a refusal the connection is reused, unless the server closed it (421)."""
        if self._client is not None and not self._client.is_connected:
            self._client = None
