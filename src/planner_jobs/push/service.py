"""The push side of the runtime: the VAPID keys, and one HTTP client per process, made on first
use inside the worker's event loop and closed when the process stops."""

from __future__ import annotations

import httpx2

from planner_jobs.push.keys import VapidKeys
from planner_jobs.push.sender import DEFAULT_TIMEOUT, PushSender, new_client
from planner_jobs.push.vapid import VapidSigner


class PushService:
    def __init__(
        self, keys: VapidKeys, *, subject: str, ttl: int, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.keys = keys
        self._signer = VapidSigner(keys, subject)
        self._ttl = ttl
        self._timeout = timeout
        self._client: httpx2.AsyncClient | None = None

    def sender(self) -> PushSender:
        if self._client is None:
            self._client = new_client(timeout=self._timeout)
        return PushSender(self._client, self._signer, ttl=self._ttl)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
