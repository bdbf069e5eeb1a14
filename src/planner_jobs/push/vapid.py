"""RFC 8292 VAPID headers, signed once per push-service origin and reused until near expiry.

A fresh claims dictionary is built for every origin (pywebpush mutates the one it is given, and
reusing it across services sends the wrong `aud`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from planner_jobs.domain.push import origin
from planner_jobs.push.keys import VapidKeys

TOKEN_LIFETIME = 12 * 3600  # RFC 8292 allows up to 24 h
RENEW_BEFORE = 3600


class VapidSigner:
    def __init__(
        self, keys: VapidKeys, subject: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._vapid = keys.vapid()
        self._subject = subject
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    def authorization(self, endpoint: str) -> str:
        """`vapid t=<jwt>,k=<public key>` for the endpoint's push service."""
        audience = origin(endpoint)
        now = self._clock()
        cached = self._cache.get(audience)
        if cached is not None and cached[1] - now > RENEW_BEFORE:
            return cached[0]
        expires = int(now) + TOKEN_LIFETIME
        claims = {"aud": audience, "exp": expires, "sub": self._subject}
        header: str = self._vapid.sign(claims)["Authorization"]
        self._cache[audience] = (header, expires)
        return header
