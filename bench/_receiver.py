"""A push receiver for the benchmarks, in its own process: granian serving `answer_201`, which
reads each request's body and answers 201. Over plain HTTP/1.1, or with a certificate over TLS
offering HTTP/2 and HTTP/1.1 by ALPN, as push services do."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


async def answer_201(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI app: lifespan events, then 201 with an empty body to every request."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit("the receiver did not start")


@contextlib.contextmanager
def receiver(tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Run the receiver until the block ends; yields its origin. `tls`: (certificate, key)."""
    port = free_port()
    options = ["--ssl-certificate", str(tls[0]), "--ssl-keyfile", str(tls[1])] if tls else []
    process = subprocess.Popen(
        [
            sys.executable, "-m", "granian", "--interface", "asgi", "--http", "auto", *options,
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--log-level", "warning", "--working-dir", str(Path(__file__).parent),
            "_receiver:answer_201",
        ]
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()
