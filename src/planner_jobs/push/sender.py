"""Sending one encrypted, signed push message over a shared async HTTP client."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from planner_jobs.domain.push import parse_retry_after
from planner_jobs.push.encryption import encrypt
from planner_jobs.push.keys import b64url_decode
from planner_jobs.push.vapid import VapidSigner

DEFAULT_TIMEOUT = 10.0  # seconds for a push service to answer


def new_session(*, timeout: float = DEFAULT_TIMEOUT) -> aiohttp.ClientSession:
    """The one HTTP session of a process: pooled keep-alive connections and timeouts.

    Call it inside the event loop that will use it. Why aiohttp rather than httpx is measured
    in docs/decisions.md. Redirects are never followed (a push service does not redirect, and
    following one would step around the endpoint allowlist).
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, limit_per_host=50, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0)),
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
    def __init__(self, session: aiohttp.ClientSession, signer: VapidSigner, *, ttl: int) -> None:
        self._session = session
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
            async with self._session.post(
                message.endpoint, data=body, headers=headers, allow_redirects=False
            ) as response:
                detail = (await response.read())[:300].decode("utf-8", "replace")
                status, retry_after_header = response.status, response.headers.get("Retry-After")
        except TimeoutError:
            return Answer(None, None, "timed out", time.perf_counter() - started)
        except aiohttp.ClientError as exc:
            reason = f"connection failed: {type(exc).__name__}"
            return Answer(None, None, reason, time.perf_counter() - started)
        retry_after = parse_retry_after(retry_after_header, now=dt.datetime.now(dt.UTC))
        return Answer(status, retry_after, detail, time.perf_counter() - started)
