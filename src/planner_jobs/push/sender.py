"""Sending one encrypted, signed push message over a shared async HTTP client, only to an
endpoint the allowlist admits."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from planner_jobs.domain.push import endpoint_problem, parse_retry_after
from planner_jobs.push.encryption import encrypt
from planner_jobs.push.http import HttpClient, RequestFailed
from planner_jobs.push.keys import b64url_decode
from planner_jobs.push.vapid import VapidSigner

DEFAULT_TIMEOUT = 10.0  # seconds for a push service to answer


@dataclass(frozen=True)
class Message:
    endpoint: str
    p256dh: str
    auth: str
    body: str  # the payload's JSON text, as the browser receives it
    urgency: str = "normal"
    topic: str | None = None
    ttl: int | None = None  # seconds the push service keeps it; None: the sender's default


@dataclass(frozen=True)
class Answer:
    """What the push service said: `status` None when it did not answer, or when the request
    was never made because the endpoint is not allowed (`refused` says why)."""

    status: int | None
    retry_after: float | None
    detail: str
    seconds: float
    refused: str | None = None


class PushSender:
    def __init__(
        self,
        client: HttpClient,
        signer: VapidSigner,
        *,
        ttl: int,
        allowed_hosts: Sequence[str],
    ) -> None:
        self._client = client
        self._signer = signer
        self._ttl = ttl
        # Rows the main app inserts never went through the API's check: every send checks the
        # exact string it would request (cached: a job sends to the same few services).
        self._refusal = lru_cache(maxsize=4096)(
            lambda endpoint: endpoint_problem(endpoint, tuple(allowed_hosts))
        )

    async def send(self, message: Message) -> Answer:
        if (refusal := self._refusal(message.endpoint)) is not None:
            return Answer(None, None, f"not sent: {refusal}", 0.0, refused=refusal)
        body = encrypt(
            message.body.encode(),
            p256dh=b64url_decode(message.p256dh),
            auth=b64url_decode(message.auth),
        )
        headers = [
            f"Authorization: {self._signer.authorization(message.endpoint)}".encode(),
            b"Content-Encoding: aes128gcm",
            b"Content-Type: application/octet-stream",
            f"TTL: {self._ttl if message.ttl is None else message.ttl}".encode(),
            f"Urgency: {message.urgency}".encode(),
        ]
        if message.topic:
            headers.append(f"Topic: {message.topic}".encode())
        started = time.perf_counter()
        try:
            reply = await self._client.post(message.endpoint, body, headers)
        except RequestFailed as failure:
            detail = "timed out" if failure.timed_out else f"connection failed: {failure}"
            return Answer(None, None, detail, time.perf_counter() - started)
        retry_after = parse_retry_after(reply.header("Retry-After"), now=dt.datetime.now(dt.UTC))
        detail = reply.body[:300].decode("utf-8", "replace")
        return Answer(reply.status, retry_after, detail, time.perf_counter() - started)
