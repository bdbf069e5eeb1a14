"""Signed download links for local storage: HMAC-SHA256 over the export id and the expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac


def signature(export_id: str, expires: int, secret: str) -> str:
    message = f"{export_id}.{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(export_id: str, expires: str, given: str, *, secret: str, now: dt.datetime) -> bool:
    """True when `given` signs (`export_id`, `expires`) and `expires` is still ahead of `now`."""
    if not expires.isdigit() or int(expires) <= now.timestamp():
        return False
    return hmac.compare_digest(signature(export_id, int(expires), secret), given)
