"""The HTTP client of a process for push services: libcurl's multi interface on the event loop.

HTTP/2 where the push service offers it (TLS ALPN), HTTP/1.1 with keep-alive otherwise; at most
`in_flight` requests at once to each push service (its origin), so one that hangs holds only
its own; each request bounded by `timeout` seconds as a whole, `CONNECT_SECONDS` to connect,
and `FIRST_BYTE_SECONDS` without a byte of an answer once the request is sent (libcurl's
low-speed limit: a service that accepts and never answers is given up on well before
`timeout`). Redirects are never
followed (a push service does not redirect, and following one would step around the endpoint
allowlist), proxies from the environment are ignored, and only http and https are spoken. The
trusted certificates are certifi's, or the file `CURL_CA_BUNDLE` names, or `ca_file`.

Why libcurl, and why its easy handles are driven here rather than through curl_cffi's
`AsyncSession` (which resets and re-sets every option of a handle per request, twice the CPU per
request of aiohttp), is measured in docs/decisions.md. Each handle is set up once; a request
sets its URL, body, headers and buffers, and a handle goes back to the pool only after a
transfer that ended normally.

PIPEWAIT: requests to an origin whose first connection is being set up wait for it and share it
if it multiplexes, rather than open a connection each (a burst of 40 opened 40 without it).
libcurl learns that an origin does not multiplex from its first answer, so over HTTP/1.1 the
first requests to an origin wait for that answer, and time out with it if it is too slow.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from io import BytesIO
from typing import cast

from curl_cffi import AsyncCurl, Curl, CurlError, CurlHttpVersion, CurlInfo, CurlOpt

TIMED_OUT = 28  # CURLE_OPERATION_TIMEDOUT
CONNECT_SECONDS = 3.0
FIRST_BYTE_SECONDS = 5  # whole seconds (libcurl's LOW_SPEED_TIME)
_NO_EXPECT = b"Expect:"  # libcurl's "Expect: 100-continue" round trip, off whatever the size


@dataclass(frozen=True)
class Reply:
    status: int
    headers: bytes  # the header block as received, status lines included
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of header `name` (case-insensitive), None when absent."""
        wanted, found = name.lower().encode() + b":", None
        for line in self.headers.split(b"\r\n"):
            if line[: len(wanted)].lower() == wanted:
                found = line[len(wanted) :].strip().decode("latin-1")
        return found


class RequestFailed(Exception):
    """No answer: the connection failed or the time ran out (`timed_out`)."""

    def __init__(self, reason: str, *, timed_out: bool) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class HttpClient:
    """Create it inside the event loop that will use it; `await close()` when done."""

    def __init__(self, *, timeout: float, ca_file: str | None = None, in_flight: int = 100) -> None:
        self._multi = AsyncCurl()
        self._idle: list[Curl] = []
        self._in_flight = in_flight
        self._slots: dict[str, asyncio.Semaphore] = {}  # per origin
        self._timeout_ms = int(timeout * 1000)
        self._ca_file = ca_file or os.environ.get("CURL_CA_BUNDLE") or ""

    async def post(self, url: str, body: bytes, headers: list[bytes]) -> Reply:
        """POST `body` with `headers` (b"Name: value" lines); raise `RequestFailed` when no
        answer came."""
        if any(b"\r" in line or b"\n" in line for line in headers):
            raise ValueError("a header line must not hold CR or LF")  # no header injection
        async with self._slots_of(url):
            curl = self._idle.pop() if self._idle else self._new_handle()
            received, header_block = BytesIO(), BytesIO()
            curl.setopt(CurlOpt.URL, url)
            curl.setopt(CurlOpt.POSTFIELDS, body)
            curl.setopt(CurlOpt.POSTFIELDSIZE, len(body))
            curl.setopt(CurlOpt.HTTPHEADER, [*headers, _NO_EXPECT])
            curl.setopt(CurlOpt.WRITEDATA, received)
            curl.setopt(CurlOpt.HEADERDATA, header_block)
            try:
                await self._multi.add_handle(curl)
            except CurlError as exc:
                curl.close()
                raise RequestFailed(_reason(exc), timed_out=exc.code == TIMED_OUT) from None
            except BaseException:  # cancelled: take the transfer out of libcurl's hands
                self._multi.remove_handle(curl)
                curl.close()
                raise
            status = cast(int, curl.getinfo(CurlInfo.RESPONSE_CODE))
            curl.clean_handles_and_buffers()  # the header list and buffers of this request
            self._idle.append(curl)
        if not status:
            raise RequestFailed("the answer had no HTTP status", timed_out=False)
        return Reply(status, header_block.getvalue(), received.getvalue())

    def _slots_of(self, url: str) -> asyncio.Semaphore:
        """The in-flight requests allowed to the origin of `url` (scheme, host and port)."""
        path = url.find("/", url.find("//") + 2)
        origin = url if path < 0 else url[:path]
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self._in_flight)
        return slots

    async def close(self) -> None:
        await self._multi.close()  # type: ignore[no-untyped-call]  # (not annotated upstream)
        for curl in self._idle:
            curl.close()
        self._idle.clear()

    def _new_handle(self) -> Curl:
        curl = Curl(cacert=self._ca_file)
        for option, value in (
            (CurlOpt.POST, 1),
            (CurlOpt.HTTP_VERSION, CurlHttpVersion.V2TLS),
            (CurlOpt.PIPEWAIT, 1),
            (CurlOpt.TIMEOUT_MS, self._timeout_ms),
            (CurlOpt.CONNECTTIMEOUT_MS, min(self._timeout_ms, int(CONNECT_SECONDS * 1000))),
            (CurlOpt.LOW_SPEED_LIMIT, 1),  # bytes per second, below which for...
            (CurlOpt.LOW_SPEED_TIME, FIRST_BYTE_SECONDS),  # ...this long the request is dropped
            (CurlOpt.NOSIGNAL, 1),
            (CurlOpt.PROXY, ""),  # "": no proxy, whatever the environment says
            (CurlOpt.PROTOCOLS_STR, "http,https"),
            (CurlOpt.USERAGENT, "planner-jobs"),
        ):
            curl.setopt(option, value)
        return curl


def _reason(exc: CurlError) -> str:
    """libcurl's message without its boilerplate: "Could not resolve host: push.example"."""
    text = str(exc).split(". See https://curl.se/", 1)[0]
    if text.startswith("Failed to perform, curl: (") and ") " in text:
        text = text.split(") ", 1)[1]
    return text
