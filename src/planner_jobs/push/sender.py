"""Sending one encrypted, signed push message over a shared async HTTP client."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

from curl_cffi import CurlHttpVersion, CurlOpt
from curl_cffi import requests as curl

from planner_jobs.domain.push import parse_retry_after
from planner_jobs.push.encryption import encrypt
from planner_jobs.push.keys import b64url_decode
from planner_jobs.push.vapid import VapidSigner

DEFAULT_TIMEOUT = 10.0  # seconds for a push service to answer


def new_session(
    *, timeout: float = DEFAULT_TIMEOUT, ca_file: str | None = None
) -> curl.AsyncSession[curl.Response]:
    """The one HTTP client of a process: HTTP/2 where the push service offers it, else HTTP/1.1
    with keep-alive; at most 100 requests in flight; `timeout` seconds for each whole request.

    Call it inside the event loop that will use it. libcurl picks the protocol by TLS ALPN. Why
    libcurl (curl_cffi) rather than aiohttp or httpx is measured in docs/decisions.md. Redirects
    are never followed (a push service does not redirect, and following one would step around
    the endpoint allowlist); proxies from the environment are ignored. The trusted certificates
    are certifi's, or the file that `CURL_CA_BUNDLE` names, or `ca_file`.

    PIPEWAIT: requests to an origin whose first connection is being set up wait for it and share
    it if it multiplexes, rather than open a connection each (a burst of 40 opened 40 without
    it). libcurl learns that an origin does not multiplex from its first answer, so over
    HTTP/1.1 the first requests to an origin wait for that answer, and time out with it if it
    is too slow (retried like any timeout).
    """
    options: dict[CurlOpt, object] = {CurlOpt.PIPEWAIT: 1}
    if ca_file is not None:
        options[CurlOpt.CAINFO] = ca_file
    return curl.AsyncSession(
        timeout=timeout,
        max_clients=100,
        http_version=CurlHttpVersion.V2TLS,
        allow_redirects=False,
        trust_env=False,
        default_headers=False,
        curl_options=options,
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
    def __init__(
        self, session: curl.AsyncSession[curl.Response], signer: VapidSigner, *, ttl: int
    ) -> None:
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
            response = await self._session.post(message.endpoint, data=body, headers=headers)
            detail = response.content[:300].decode("utf-8", "replace")
            status, retry_after_header = response.status_code, response.headers.get("Retry-After")
        except curl.exceptions.Timeout:
            return Answer(None, None, "timed out", time.perf_counter() - started)
        except curl.exceptions.RequestException as exc:
            return Answer(None, None, _failure(exc), time.perf_counter() - started)
        retry_after = parse_retry_after(retry_after_header, now=dt.datetime.now(dt.UTC))
        return Answer(status, retry_after, detail, time.perf_counter() - started)


def _failure(exc: curl.exceptions.RequestException) -> str:
    """What went wrong, from libcurl's message without its boilerplate: "connection failed:
    DNSError: Could not resolve host: push.example (Domain name not found)"."""
    text = str(exc).split(". See https://curl.se/", 1)[0]
    if text.startswith("Failed to perform, curl: (") and ") " in text:
        text = text.split(") ", 1)[1]
    return f"connection failed: {type(exc).__name__}: {text}"[:300]
