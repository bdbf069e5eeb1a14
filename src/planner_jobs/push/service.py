"""The push side of the runtime: the VAPID keys, and one HTTP session per process, made on first
use inside the worker's event loop and closed when the process stops."""

from __future__ import annotations

import aiohttp

from planner_jobs.push.keys import VapidKeys
from planner_jobs.push.sender import DEFAULT_TIMEOUT, PushSender, new_session
from planner_jobs.push.vapid import VapidSigner


class PushService:
    def __init__(
        self, keys: VapidKeys, *, subject: str, ttl: int, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.keys = keys
        self._signer = VapidSigner(keys, subject)
        self._ttl = ttl
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def sender(self) -> PushSender:
        if self._session is None or self._session.closed:
            self._session = new_session(timeout=self._timeout)
        return PushSender(self._session, self._signer, ttl=self._ttl)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
