"""The push HTTP client's own guarantees, against real sockets: what it refuses to do, and that a
cancelled request leaves it usable."""

from __future__ import annotations

import asyncio
import socket

import pytest

from planner_jobs.push.http import HttpClient, RequestFailed
from tests.push_receiver import PushReceiver


async def _post(url: str) -> int:
    client = HttpClient(timeout=2.0)
    try:
        return (await client.post(url, b"body", [b"TTL: 60"])).status
    finally:
        await client.close()


def test_proxies_from_the_environment_are_ignored(
    receiver: PushReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))  # bound, not listening: a proxy there refuses everything
        proxy = f"http://127.0.0.1:{dead.getsockname()[1]}"
        for name in ("http_proxy", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy)

        # The receiver answers 400 to a body it cannot decrypt: the request reached it.
        assert asyncio.run(_post(receiver.endpoint("x"))) == 400
    assert receiver.requests["x"] == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"])
def test_only_http_and_https_are_spoken(url: str) -> None:
    with pytest.raises(RequestFailed, match="disabled"):
        asyncio.run(_post(url))


def test_a_cancelled_request_leaves_the_client_usable(receiver: PushReceiver) -> None:
    async def scenario() -> tuple[int, str]:
        client = HttpClient(timeout=0.5)
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)  # accepts the connection, never answers
            url = f"http://127.0.0.1:{silent.getsockname()[1]}/push/x"
            request = asyncio.create_task(client.post(url, b"body", []))
            await asyncio.sleep(0.1)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            with pytest.raises(RequestFailed) as timed_out:
                await client.post(url, b"body", [])
        status = (await client.post(receiver.endpoint("x"), b"body", [b"TTL: 60"])).status
        await client.close()
        return status, str(timed_out.value)

    status, reason = asyncio.run(scenario())
    assert status == 400  # answered (the receiver cannot decrypt "body")
    assert reason.startswith("Operation timed out")


@pytest.mark.parametrize("line", [b"Topic: a\r\nX-Injected: 1", b"Topic: a\nX-Injected: 1"])
def test_a_header_line_holding_a_line_break_is_refused(receiver: PushReceiver, line: bytes) -> None:
    async def scenario() -> None:
        client = HttpClient(timeout=2.0)
        try:
            await client.post(receiver.endpoint("x"), b"body", [b"TTL: 60", line])
        finally:
            await client.close()

    with pytest.raises(ValueError, match="CR or LF"):
        asyncio.run(scenario())
    assert receiver.requests == {}
