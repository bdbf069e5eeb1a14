"""A real Web Push receiver for tests: an HTTP server on 127.0.0.1 that checks each request the
way a push service and a browser would, then answers as scripted.

For every POST to /push/<name> it checks the TTL header, verifies the VAPID JWT against the
expected public key (and its `aud` and `exp`), decrypts the aes128gcm body with that browser's
private key and auth secret, and records what it got. `script(name, ...)` queues answers
(a status, a Retry-After, a delay, or "close" to drop the connection); the default is 201.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import decode as decode_jwt


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A browser's push subscription keys (its private half stays here)."""

    name: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)


@dataclass(frozen=True)
class Received:
    name: str
    payload: Any
    headers: dict[str, str]
    claims: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    status: int = 201
    retry_after: str | None = None
    delay: float = 0.0
    close: bool = False
    body: str = ""


class PushReceiver:
    def __init__(self, vapid_public_key: str | None = None) -> None:
        self.vapid_public_key = vapid_public_key  # base64url applicationServerKey expected
        self.browsers: dict[str, Browser] = {}
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.requests: dict[str, int] = defaultdict(int)
        self._script: dict[str, deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def host(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(name)
        return self.browsers[name]

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def script(self, name: str, *answers: Answer) -> None:
        with self._lock:
            self._script[name].extend(answers)

    def payloads(self, name: str) -> list[Any]:
        return [r.payload for r in self.received if r.name == name]

    def __enter__(self) -> PushReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        name = request.path.rsplit("/", 1)[-1]
        length = int(request.headers.get("Content-Length", "0"))
        body = request.rfile.read(length)
        with self._lock:
            self.requests[name] += 1
            answer = self._script[name].popleft() if self._script[name] else Answer()
        if answer.delay:
            time.sleep(answer.delay)
        if answer.close:
            request.close_connection = True
            request.connection.close()
            return
        if answer.status in (200, 201):
            problem = self._check_and_record(name, request, body)
            if problem is not None:
                self.errors.append(problem)
                self._reply(request, 400, problem)
                return
        self._reply(request, answer.status, answer.body, answer.retry_after)

    def _check_and_record(
        self, name: str, request: BaseHTTPRequestHandler, body: bytes
    ) -> str | None:
        headers = {key.lower(): value for key, value in request.headers.items()}
        if not headers.get("ttl", "").isdigit():
            return "missing or bad TTL header"
        if headers.get("content-encoding") != "aes128gcm":
            return "Content-Encoding must be aes128gcm"
        authorization = headers.get("authorization", "")
        if not authorization.startswith("vapid "):
            return "missing vapid Authorization"
        parts = dict(part.split("=", 1) for part in authorization[6:].split(","))
        if self.vapid_public_key is not None and parts.get("k") != self.vapid_public_key:
            return "VAPID public key is not the published one"
        try:
            claims = decode_jwt(parts["t"], parts["k"])
        except Exception as exc:
            return f"bad VAPID token: {exc}"
        now = time.time()
        if claims.get("aud") != self.origin:
            return f"VAPID aud {claims.get('aud')!r} is not {self.origin}"
        if not now < claims.get("exp", 0) <= now + 24 * 3600:
            return "VAPID exp out of range"
        browser = self.browsers.get(name)
        if browser is None:
            return f"unknown subscription {name}"
        try:
            plaintext = http_ece.decrypt(
                body,
                private_key=browser.private_key,
                auth_secret=browser.auth_secret,
                version="aes128gcm",
            )
        except Exception as exc:
            return f"cannot decrypt: {exc}"
        with self._lock:
            self.received.append(Received(name, json.loads(plaintext), headers, claims))
        return None

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, body: str = "", retry_after: str | None = None
    ) -> None:
        data = body.encode()
        request.send_response(status)
        if retry_after is not None:
            request.send_header("Retry-After", retry_after)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
