"""Signed download links for local storage: HMAC-SHA256 over the export id and the expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

# What a link we signed looks like: an expiry of up to 12 ASCII digits (Unix seconds) and 64
# lowercase hex digits. Anything else is refused before any arithmetic or comparison (`²` is a
# digit to `str.isdigit`, `int()` refuses 5,000 digits, `compare_digest` refuses non-ASCII).
_EXPIRES = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def signature(export_id: str, expires: int, secret: str) -> str:
    message = f"{export_id}.{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(export_id: str, expires: str, given: str, *, secret: str, now: dt.datetime) -> bool:
    """True when `given` signs (`export_id`, `expires`) and `expires` is still ahead of `now`;
    False for anything malformed."""
    if not _EXPIRES.fullmatch(expires) or not _SIGNATURE.fullmatch(given):
        return False
    if int(expires) <= now.timestamp():
        return False
    return hmac.compare_digest(signature(export_id, int(expires), secret), given)
