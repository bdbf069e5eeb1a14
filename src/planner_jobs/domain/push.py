"""Web Push rules: which endpoints we talk to, what a push service's answer means, and when to
try again."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import re
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

# RFC 8291 with one record: the body is the 86-byte header, the plaintext, a padding delimiter
# byte and a 16-byte tag, and push services accept at most 4096 bytes of body.
MAX_BODY = 4096
MAX_PLAINTEXT = MAX_BODY - 86 - 1 - 16  # 3993
MAX_ENDPOINT_LENGTH = 2048
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3
# The rules a notification must meet (urgency, topic, TTL, size, deduplication key) are the
# database's own: planner_notification_problem(), migration 0006, which every way in calls.
_URL_CHARACTERS = re.compile(r"[!-~]+", re.ASCII)  # printable ASCII, no space or control


def endpoint_problem(endpoint: str, allowed_hosts: Sequence[str]) -> str | None:
    """Why `endpoint` may not be pushed to (None when it may): our SSRF defence.

    Allowed: https to a host of the list (`host` on the default port, `host:port`, or
    `*.domain` for its subdomains); plain http only to a host listed with its port (a local
    receiver); never credentials in the URL; an IP address only when listed as such.
    """
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        return "the endpoint URL is too long"
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return "the endpoint is not a valid URL"
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return "the endpoint must be an https URL"
    if not _URL_CHARACTERS.fullmatch(endpoint):
        # Python's URL parser drops tabs and line breaks: the host it read is not the one of
        # the string stored and requested.
        return "the endpoint must be a URL of printable ASCII characters, without spaces"
    if parts.username is not None or parts.password is not None:
        return "the endpoint must not carry credentials"
    explicit_port = f"{host}:{port}" if port is not None else None
    listed_with_port = explicit_port is not None and explicit_port in allowed_hosts
    if parts.scheme == "http" and not listed_with_port:
        return "the endpoint must be an https URL"
    if listed_with_port:
        return None
    if port not in (None, 443):
        return f"the push service port {port} is not allowed"
    if _is_ip(host):
        return "the endpoint must name a push service, not an IP address"
    for pattern in allowed_hosts:
        if pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return None
    return f"{host} is not an allowed push service"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def origin(endpoint: str) -> str:
    """The push service's origin (scheme://host[:port]), the `aud` of its VAPID token."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # the subscription no longer exists: delete it
    RETRY = "retry"  # try again later, for this subscription alone
    REJECTED = "rejected"  # final for this subscription, kept: our request was refused


def classify(status: int | None) -> Outcome:
    """What a push service's HTTP status means (None: no answer, a timeout or a lost
    connection). 400/401/403/413 are about our request (headers, VAPID key, size), not the
    subscription: they never delete it."""
    if status is None or status == 429 or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (404, 410):
        return Outcome.GONE
    return Outcome.REJECTED


MAX_ATTEMPTS = 8
_BACKOFF = (5, 30, 120, 600, 1800, 3600, 3600)  # seconds after attempt 1, 2, ...


def retry_delay(attempts: int, retry_after: float | None = None) -> dt.timedelta | None:
    """How long to wait after `attempts` failed tries (None: give up). A `Retry-After` from
    the push service is honoured when it asks for longer."""
    if attempts >= MAX_ATTEMPTS:
        return None
    wait = float(_BACKOFF[min(attempts, len(_BACKOFF)) - 1])
    if retry_after is not None:
        wait = max(wait, min(retry_after, 24 * 3600))
    return dt.timedelta(seconds=wait)


def parse_retry_after(value: str | None, *, now: dt.datetime) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
