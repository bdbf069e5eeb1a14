"""Benchmark: async HTTP clients for Web Push, over TLS to a receiver that offers HTTP/2.

    pip install granian niquests curl_cffi 'httpx[http2]'   # not dependencies of the project
    python bench/http_clients.py [--messages 5000]     # CLIENTS='aiohttp httpx' runs only those

The receiver (`_receiver.answer_201` on granian, in its own process) speaks TLS with ALPN `h2`
and `http/1.1` and answers 201 to every POST. Each client, in its own process, sends the same
encrypted push messages (RFC 8291, fresh keys per message, one cached VAPID header), 100 in
flight, after a warm-up:
  aiohttp    HTTP/1.1 with keep-alive (what the service uses)
  curl_cffi  libcurl + nghttp2, HTTP/2
  niquests   HTTP/2, multiplexed
  httpx      HTTP/2 (h2)
Prints messages/s, CPU time per message and the HTTP version each client used. The figures behind
the Web Push row of docs/decisions.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _receiver import free_port, wait_for_port

CLIENTS = os.environ.get("CLIENTS", "aiohttp curl_cffi niquests httpx").split()
IN_FLIGHT = 100

Post = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, str]]]


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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
    cert, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, keyfile


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
    if kind == "curl_cffi":
        from curl_cffi import CurlHttpVersion
        from curl_cffi import requests as curl

        curl_session = curl.AsyncSession(
            verify=cafile, timeout=10, max_clients=50, http_version=CurlHttpVersion.V2TLS
        )

        async def post_curl(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            response = await curl_session.post(url, data=body, headers=headers)
            return response.status_code, {3: "HTTP/2"}.get(int(response.http_version), "HTTP/1")

        return post_curl, curl_session.close
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

    sys.path.insert(0, str(Path(__file__).parent.parent / "src"))
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
    await close()
    print(
        f"{kind:10} {messages / wall:7,.0f} msg/s  {cpu / messages * 1e6:6,.0f} µs CPU/message"
        f"  {dict(versions)}",
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
        cert, key = self_signed(Path(folder))
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "granian", "--interface", "asgi", "--http", "auto",
                "--ssl-certificate", str(cert), "--ssl-keyfile", str(key),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--log-level", "warning", "--working-dir", str(Path(__file__).parent),
                "_receiver:answer_201",
            ]
        )  # fmt: skip
        try:
            wait_for_port(port)
            for kind in CLIENTS:
                subprocess.run(
                    [
                        sys.executable, __file__, "--client", kind, "--messages",
                        str(args.messages), "--url", f"https://127.0.0.1:{port}/push/x",
                        "--cafile", str(cert),
                    ],
                    check=False,
                )  # fmt: skip
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
