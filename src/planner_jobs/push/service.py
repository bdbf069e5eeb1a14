"""The push side of the runtime: the VAPID keys, and one HTTP client per process, made on first
use inside the worker's event loop and closed when the process stops."""

from __future__ import annotations

from collections.abc import Sequence

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
        allowed_hosts: Sequence[str],
        timeout: float = DEFAULT_TIMEOUT,
        ca_file: str | None = None,
    ) -> None:
        self.keys = keys
        self._signer = VapidSigner(keys, subject)
        self._ttl = ttl
        self._allowed_hosts = tuple(allowed_hosts)
        self._timeout = timeout
        self._ca_file = ca_file
        self._client: HttpClient | None = None
        self._sender: PushSender | None = None

    def sender(self) -> PushSender:
        """The process's sender, over its one HTTP client (made on first use, in the event
        loop that will use it)."""
        if self._sender is None:
            self._client = HttpClient(timeout=self._timeout, ca_file=self._ca_file)
            self._sender = PushSender(
                self._client, self._signer, ttl=self._ttl, allowed_hosts=self._allowed_hosts
            )
        return self._sender

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._sender = None
