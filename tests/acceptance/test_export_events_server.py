"""The export event stream on a real server (`planner-jobs api`, uvicorn): a client that goes
away is forgotten at once, as `/metrics` shows."""

from __future__ import annotations

import socket
import time
import urllib.request

import sqlalchemy as sa

from planner_jobs.db.engine import create_engine
from tests.acceptance.conftest import Cli, wait_for_http


def open_streams(port: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("planner_jobs_export_event_streams "):
                return float(line.split()[1])
    raise AssertionError("no planner_jobs_export_event_streams in /metrics")


def test_a_client_that_hangs_up_is_forgotten_at_once(
    cli: Cli, database_url: str, processes: list
) -> None:
    engine = create_engine(database_url)
    with engine.begin() as c:
        user = c.scalar(
            sa.text("INSERT INTO users (email) VALUES ('sse@example.com') RETURNING id")
        )
        export = c.scalar(sa.text("SELECT planner_request_export(:u, 'json')"), {"u": user})
    engine.dispose()
    token = cli("token", str(user)).stdout.strip()
    api = cli.start("api")
    processes.append(api)
    port = cli.environment["PLANNER_PORT"]
    wait_for_http(f"http://127.0.0.1:{port}/healthz", within=30)

    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as client:
        client.sendall(
            f"GET /api/exports/{export}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        received = b""
        while b"event: status" not in received:
            received += client.recv(4096)
        assert received.startswith(b"HTTP/1.1 200")
        assert b"text/event-stream" in received
        assert open_streams(port) == 1

    deadline = time.monotonic() + 2
    while open_streams(port) != 0:
        assert time.monotonic() < deadline, "the stream outlived its client"
        time.sleep(0.05)
