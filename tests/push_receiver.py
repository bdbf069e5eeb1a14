"""A real Web Push receiver for tests: a server on 127.0.0.1 that checks each request the way a
push service and a browser would, then answers as scripted.

For every POST to /push/<name> it checks the TTL header, verifies the VAPID JWT against the
expected public key (and its `aud` and `exp`), decrypts the aes128gcm body with that browser's
private key and auth secret, and records what it got. `script(name, ...)` queues answers
(a status, a Retry-After, a delay, or "close" to drop the connection, over plain HTTP); the
default is 201.

Plain HTTP/1.1 by default (a threading `http.server`); given `alpn`, HTTPS offering those
protocols, `("h2", "http/1.1")` as real push services do (hypercorn, with a self-signed
certificate whose file is `ca_file`). Either way it records the HTTP version of each request and
the client addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from py_vapid.jwt import decode as decode_jwt

from planner_jobs.demo import Browser
from tests.data import add_subscription


@dataclass(frozen=True)
class Received:
    name: str
    payload: Any
    headers: dict[str, str]
    claims: dict[str, Any]
    at: float = field(default_factory=time.time)  # when it was received (Unix seconds)


@dataclass(frozen=True)
class Answer:
    status: int = 201
    retry_after: str | None = None
    delay: float = 0.0
    close: bool = False
    body: str = ""


class PushReceiver:
    def __init__(
        self, vapid_public_key: str | None = None, *, alpn: tuple[str, ...] | None = None
    ) -> None:
        self.vapid_public_key = vapid_public_key  # base64url applicationServerKey expected
        self.alpn = alpn
        self.browsers: dict[str, Browser] = {}
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.requests: dict[str, int] = defaultdict(int)
        self.versions: list[str] = []  # the HTTP version of each request: "1.1", "2"
        self.clients: set[tuple[str, int]] = set()  # one address per connection
        self._script: dict[str, deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server: _Http1Server | _TlsServer = (
            _Http1Server(self) if alpn is None else _TlsServer(self, alpn)
        )

    @property
    def ca_file(self) -> str | None:
        """The certificate to trust for this receiver (None over plain HTTP)."""
        return self._server.ca_file

    @property
    def origin(self) -> str:
        return f"{self._server.scheme}://{self.host}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.port}"

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(name)
        return self.browsers[name]

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def subscribe(
        self, connection: sa.Connection, user: uuid.UUID, name: str, *, endpoint: str | None = None
    ) -> Browser:
        """A new browser `name`, subscribed for `user` at its endpoint here (or at `endpoint`)."""
        browser = self.browser(name)
        add_subscription(
            connection,
            user,
            endpoint or self.endpoint(name),
            p256dh=browser.p256dh,
            auth=browser.auth,
        )
        return browser

    def script(self, name: str, *answers: Answer) -> None:
        with self._lock:
            self._script[name].extend(answers)

    def unscript(self, name: str) -> None:
        """Forget the answers still queued for `name`: it answers 201 again."""
        with self._lock:
            self._script[name].clear()

    def payloads(self, name: str) -> list[Any]:
        return [r.payload for r in self.received if r.name == name]

    def __enter__(self) -> PushReceiver:
        self._server.start()
        return self

    def down(self) -> None:
        """The push service goes away: its port refuses connections until `up()`."""
        if not isinstance(self._server, _Http1Server):
            raise NotImplementedError("an outage is for the plain HTTP receiver")
        self._server.stop()

    def up(self) -> None:
        """Back, on the same port, with the same browsers."""
        if not isinstance(self._server, _Http1Server):
            raise NotImplementedError("an outage is for the plain HTTP receiver")
        self._server = _Http1Server(self, port=self._server.port)
        self._server.start()

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def _next(self, path: str, version: str, client: tuple[str, int]) -> tuple[str, Answer]:
        """A request arrived: count it and take the scripted answer for its subscription."""
        name = path.rsplit("/", 1)[-1]
        with self._lock:
            self.requests[name] += 1
            self.versions.append(version)
            self.clients.add(client)
            return name, self._script[name].popleft() if self._script[name] else Answer()

    def _accept(self, name: str, answer: Answer, headers: dict[str, str], body: bytes) -> Answer:
        """The answer to send: a 2xx is given only to a request that passes every check."""
        if answer.status in (200, 201):
            problem = self._check_and_record(name, headers, body)
            if problem is not None:
                self.errors.append(problem)
                return Answer(400, body=problem)
        return answer

    def _check_and_record(self, name: str, headers: dict[str, str], body: bytes) -> str | None:
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
            payload = browser.read(body)
        except Exception as exc:
            return f"cannot decrypt: {exc}"
        with self._lock:
            self.received.append(Received(name, payload, headers, claims))
        return None


class _Http1Server:
    """HTTP/1.1 with keep-alive, a thread per connection."""

    scheme = "http"
    ca_file = None

    def __init__(self, receiver: PushReceiver, *, port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                name, answer = receiver._next(self.path, "1.1", self.client_address[:2])
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.close:
                    self.close_connection = True
                    self.connection.close()
                    return
                headers = {key.lower(): value for key, value in self.headers.items()}
                answer = receiver._accept(name, answer, headers, body)
                data = answer.body.encode()
                self.send_response(answer.status)
                if answer.retry_after is not None:
                    self.send_header("Retry-After", answer.retry_after)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # socketserver's 5 drops a burst of new connections

        self._server = Server(("127.0.0.1", port), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _TlsServer:
    """HTTPS offering `alpn` (h2, http/1.1): hypercorn on its own event loop and thread."""

    scheme = "https"

    def __init__(self, receiver: PushReceiver, alpn: tuple[str, ...]) -> None:
        from hypercorn.config import Config

        self._receiver = receiver
        self._folder = tempfile.TemporaryDirectory(prefix="push-receiver-")
        certificate, key = self_signed_certificate(Path(self._folder.name))
        self.ca_file: str | None = str(certificate)
        listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = listener.getsockname()[1]
        self._config = Config()
        self._config.bind = [f"fd://{listener.detach()}"]
        self._config.certfile, self._config.keyfile = str(certificate), str(key)
        self._config.alpn_protocols = list(alpn)
        self._loop = asyncio.new_event_loop()
        self._stopping = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from hypercorn.asyncio import serve

        self._loop.run_until_complete(
            serve(
                cast(Any, self._app),
                self._config,
                shutdown_trigger=self._stopping.wait,
                mode="asgi",
            )
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)
        self._loop.close()
        self._folder.cleanup()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        name, answer = self._receiver._next(
            scope["path"], scope["http_version"], tuple(scope["client"])
        )
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.close:
            raise NotImplementedError("a scripted close is for the plain HTTP receiver")
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        answer = self._receiver._accept(name, answer, headers, body)
        response_headers = [(b"content-length", str(len(answer.body.encode())).encode())]
        if answer.retry_after is not None:
            response_headers.append((b"retry-after", answer.retry_after.encode()))
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": response_headers}
        )
        await send({"type": "http.response.body", "body": answer.body.encode()})


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class HangingService:
    """A push service that accepts connections, reads what is sent and never answers (plain
    HTTP on 127.0.0.1): the worst a push service can do to a sender."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._closing = threading.Event()
        self.connections = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def endpoint(self, name: str) -> str:
        return f"http://{self.host}/push/{name}"

    def __enter__(self) -> HangingService:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._listener.close()
        for connection in self._connections:
            connection.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._connections.append(connection)
            threading.Thread(target=self._swallow, args=(connection,), daemon=True).start()

    def _swallow(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while connection.recv(65536):
                pass
