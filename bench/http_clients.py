"""Benchmark: async HTTP clients for Web Push, over TLS to a receiver that offers HTTP/2.

    pip install niquests 'httpx[http2]'   # not dependencies of the project (nor of its extras)
    python bench/http_clients.py [--messages 5000]     # CLIENTS='service aiohttp' runs only those

The receiver (`_receiver`: granian, from the bench extra, in its own process) speaks TLS with
ALPN `h2` and `http/1.1` and answers 201 to every POST. Each client, in its own process, sends
the same encrypted push messages (RFC 8291, fresh keys per message, one cached VAPID header),
100 in flight, after a warm-up:
  service    the service's client: `push.http.HttpClient` (libcurl + nghttp2 through
             curl_cffi's easy handles), HTTP/2 by ALPN, multiplexed
  curl_cffi  the same options through curl_cffi's `AsyncSession`
  aiohttp    HTTP/1.1 with keep-alive (the service's client until 2026-11-29; comes with the
             bench extra's pywebpush)
  niquests   HTTP/2, multiplexed
  httpx      HTTP/2 (h2)
Prints messages/s, CPU time per message, the HTTP version each client used and how many
connections it held open at the end. The figures behind the Web Push row of docs/decisions.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # for tests.push_receiver
import psutil
from tests.push_receiver import self_signed_certificate

from _receiver import receiver

CLIENTS = os.environ.get("CLIENTS", "service curl_cffi aiohttp niquests httpx").split()
IN_FLIGHT = 100

Post = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, str]]]


async def client(kind: str, url: str, cafile: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    context = ssl.create_default_context(cafile=cafile)
    if kind == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, limit_per_host=50, ssl=context),
            timeout=aiohttp.ClientTimeout(total=10),
        )

        async def post_aiohttp(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status, f"HTTP/{response.version.major}.{response.version.minor}"

        return post_aiohttp, session.close
    if kind == "service":
        from planner_jobs.push.http import HttpClient

        service = HttpClient(timeout=10, ca_file=cafile)

        async def post_service(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            lines = [f"{name}: {value}".encode() for name, value in headers.items()]
            reply = await service.post(url, body, lines)
            return reply.status, reply.headers.split(b" ", 1)[0].decode()

        return post_service, service.close
    if kind == "curl_cffi":
        from curl_cffi import CurlHttpVersion, CurlOpt
        from curl_cffi import requests as curl

        session = curl.AsyncSession(
            timeout=10,
            max_clients=100,
            http_version=CurlHttpVersion.V2TLS,
            allow_redirects=False,
            trust_env=False,
            default_headers=False,
            curl_options={CurlOpt.PIPEWAIT: 1, CurlOpt.CAINFO: cafile},
        )

        async def post_curl(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            response = await session.post(url, data=body, headers=headers)
            return response.status_code, {3: "HTTP/2"}.get(int(response.http_version), "HTTP/1")

        return post_curl, session.close
    if kind == "niquests":
        import niquests

        niquests_session = niquests.AsyncSession(multiplexed=True)

        async def post_niquests(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            response = await niquests_session.post(
                url, data=body, headers=headers, timeout=10, verify=cafile, stream=True
            )
            await response.content  # type: ignore[misc]
            return response.status_code or 0, f"HTTP/{int(response.http_version or 0) / 10:g}"

        return post_niquests, niquests_session.close
    if kind == "httpx":
        import httpx

        httpx_client = httpx.AsyncClient(http2=True, verify=context, timeout=10)

        async def post_httpx(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            response = await httpx_client.post(url, content=body, headers=headers)
            return response.status_code, response.http_version

        return post_httpx, httpx_client.aclose
    raise SystemExit(f"unknown client {kind}")


async def measure(kind: str, url: str, cafile: str, messages: int) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid02

    from planner_jobs.push.encryption import encrypt

    browser = ec.generate_private_key(ec.SECP256R1())
    p256dh = browser.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)
    vapid = Vapid02()
    vapid.generate_keys()
    claims = {"aud": url.rsplit("/", 2)[0], "exp": int(time.time()) + 3600, "sub": "mailto:b@x.io"}
    headers = {
        "Authorization": vapid.sign(claims)["Authorization"],
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": "60",
        "Urgency": "normal",
    }
    post, close = await client(kind, url, cafile)
    versions: Counter[str] = Counter()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with gate:
            body = encrypt(
                b'{"title":"Benchmark","body":"An ordinary text."}', p256dh=p256dh, auth=auth
            )
            status, version = await post(body, headers)
            if status != 201:
                raise SystemExit(f"{kind}: the receiver answered {status}")
            versions[version] += 1

    async def run(count: int) -> None:
        await asyncio.gather(*(one() for _ in range(count)))

    await run(200)
    cpu, wall = time.process_time(), time.perf_counter()
    await run(messages)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    port = urlsplit(url).port
    connections = sum(
        1 for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port
    )
    await close()
    print(
        f"{kind:10} {messages / wall:7,.0f} msg/s  {cpu / messages * 1e6:6,.0f} µs CPU/message"
        f"  {dict(versions)}, {connections} connections open",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cafile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(measure(args.client, args.url, args.cafile, args.messages))
        return
    with tempfile.TemporaryDirectory() as folder:
        cert, key = self_signed_certificate(Path(folder))
        with receiver(tls=(cert, key)) as origin:
            for kind in CLIENTS:
                subprocess.run(
                    [
                        sys.executable, __file__, "--client", kind, "--messages",
                        str(args.messages), "--url", f"{origin}/push/x", "--cafile", str(cert),
                    ],
                    check=False,
                )  # fmt: skip


if __name__ == "__main__":
    main()
