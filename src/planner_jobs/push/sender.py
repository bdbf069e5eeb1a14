"""Sending one encrypted, signed push message over a shared async HTTP client."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx2

from planner_jobs.domain.push import parse_retry_after
from planner_jobs.push.encryption import encrypt
from planner_jobs.push.keys import b64url_decode
from planner_jobs.push.vapid import VapidSigner

DEFAULT_TIMEOUT = 10.0  # seconds for a push service to answer
LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=100)


def new_client(*, timeout: float = DEFAULT_TIMEOUT) -> httpx2.AsyncClient:
    """The one HTTP client of a process: pooled connections, HTTP/2 where offered, timeouts.

    Redirects are not followed (a push service does not redirect; following one would defeat
    the endpoint allowlist).
    """
    return httpx2.AsyncClient(
        http2=True,
        timeout=httpx2.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=LIMITS,
        follow_redirects=False,
        trust_env=False,
    )


@dataclass(frozen=True)
class Message:
    endpoint: str
    p256dh: str
    auth: str
    payload: dict[str, Any]
    urgency: str = "normal"
    topic: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the push service said: `status` None when it did not answer."""

    status: int | None
    retry_after: float | None
    detail: str
    seconds: float


def payload_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes the browser receives: the payload's JSON text."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class PushSender:
    def __init__(self, client: httpx2.AsyncClient, signer: VapidSigner, *, ttl: int) -> None:
        self._client = client
        self._signer = signer
        self._ttl = ttl

    async def send(self, message: Message) -> Answer:
        body = encrypt(
            payload_bytes(message.payload),
            p256dh=b64url_decode(message.p256dh),
            auth=b64url_decode(message.auth),
        )
        headers = {
            "Authorization": self._signer.authorization(message.endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self._ttl),
            "Urgency": message.urgency,
        }
        if message.topic:
            headers["Topic"] = message.topic
        started = time.perf_counter()
        try:
            response = await self._client.post(message.endpoint, content=body, headers=headers)
        except httpx2.TimeoutException:
            return Answer(None, None, "timed out", time.perf_counter() - started)
        except httpx2.TransportError as exc:
            return Answer(
                None,
                None,
                f"connection failed: {type(exc).__name__}",
                time.perf_counter() - started,
            )
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"), now=dt.datetime.now(dt.UTC)
        )
        return Answer(
            response.status_code,
            retry_after,
            response.text[:300],
            time.perf_counter() - started,
        )
