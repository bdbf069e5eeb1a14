"""The push side of the runtime: the VAPID keys, and one HTTP session per process, made on first
use inside the worker's event loop and closed when the process stops."""

from __future__ import annotations

from curl_cffi import requests as curl

from planner_jobs.push.keys import VapidKeys
from planner_jobs.push.sender import DEFAULT_TIMEOUT, PushSender, new_session
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
        self._session: curl.AsyncSession[curl.Response] | None = None

    def sender(self) -> PushSender:
        if self._session is None:
            self._session = new_session(timeout=self._timeout, ca_file=self._ca_file)
        return PushSender(self._session, self._signer, ttl=self._ttl)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
