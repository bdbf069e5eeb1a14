"""The push side of the runtime: the VAPID keys, one HTTP client per process (made on first use
inside the worker's event loop, closed when the process stops), and the answers still awaited
after their job moved on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from planner_jobs.push.http import HttpClient
from planner_jobs.push.keys import VapidKeys
from planner_jobs.push.sender import DEFAULT_TIMEOUT, PushSender
from planner_jobs.push.vapid import VapidSigner

log = logging.getLogger(__name__)

# How long a delivery job waits for one push service's answer before it leaves the request to
# finish on its own (`keep`): a service that hangs must not hold the worker's job slots, nor
# delay the users of the others.
DEFAULT_PATIENCE = 1.0
CLOSING_WAIT = 5.0  # seconds a stopping process gives the answers still on their way


class PushService:
    def __init__(
        self,
        keys: VapidKeys,
        *,
        subject: str,
        ttl: int,
        allowed_hosts: Sequence[str],
        timeout: float = DEFAULT_TIMEOUT,
        patience: float = DEFAULT_PATIENCE,
        ca_file: str | None = None,
    ) -> None:
        self.keys = keys
        self.timeout = timeout
        self.patience = patience
        self._signer = VapidSigner(keys, subject)
        self._ttl = ttl
        self._allowed_hosts = tuple(allowed_hosts)
        self._ca_file = ca_file
        self._client: HttpClient | None = None
        self._sender: PushSender | None = None
        self._kept: set[asyncio.Task[None]] = set()

    @property
    def late_limit(self) -> float:
        """The longest a request left to finish on its own may take, waiting for a connection
        slot included (then it is abandoned): a delivery whose request is out that long is not
        sent again before then."""
        return 2 * self.timeout + 1

    def sender(self) -> PushSender:
        """The process's sender, over its one HTTP client (made on first use, in the event
        loop that will use it)."""
        if self._sender is None:
            self._client = HttpClient(timeout=self.timeout, ca_file=self._ca_file)
            self._sender = PushSender(
                self._client, self._signer, ttl=self._ttl, allowed_hosts=self._allowed_hosts
            )
        return self._sender

    def keep(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run `work` (recording answers that came after their job ended) until it is done,
        or until the process stops."""
        task = asyncio.create_task(work, name=name)
        self._kept.add(task)
        task.add_done_callback(self._kept.discard)

    async def aclose(self) -> None:
        """Give the answers still awaited a few seconds to arrive and be recorded (the process
        is stopping), then close the client; the deliveries of those that did not arrive stay
        pending and are sent again later."""
        if self._kept:
            log.info("waiting for %d push answers still on their way", len(self._kept))
            _, unfinished = await asyncio.wait(
                self._kept, timeout=min(self.late_limit, CLOSING_WAIT)
            )
            for task in unfinished:  # their deliveries stay pending: sent again later
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*unfinished, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = self._sender = None
