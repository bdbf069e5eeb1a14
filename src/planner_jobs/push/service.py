"""The push side of the runtime: the VAPID keys, and one HTTP client per process, made on first
use inside the worker's event loop and closed when the process stops."""

from __future__ import annotations

from planner_jobs.push.http import HttpClient
from planner_jobs.push.keys import VapidKeys
from planner_jobs.push.sender import DEFAULT_TIMEOUT, PushSender
from planner_jobs.push.vapid import VapidSigner


class PushService:
    def __init__(
        self,
        keys: VapidKeys,
        *,
        subject: str,
        ttl: int,
        timeout: float = DEFAULT_TIMEOUT,
        ca_file: str | None = None,
    ) -> None:
        self.keys = keys
        self._signer = VapidSigner(keys, subject)
        self._ttl = ttl
        self._timeout = timeout
        self._ca_file = ca_file
        self._client: HttpClient | None = None

    def sender(self) -> PushSender:
        if self._client is None:
            self._client = HttpClient(timeout=self._timeout, ca_file=self._ca_file)
        return PushSender(self._client, self._signer, ttl=self._ttl)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
