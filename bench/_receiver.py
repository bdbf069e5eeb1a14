"""A push receiver for the benchmarks, to run in its own process: it reads each request's body
and answers 201. Standard library only, so any venv with an ASGI server can serve it."""

from __future__ import annotations

import socket
import sys
import time
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
