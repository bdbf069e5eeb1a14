"""A notification as it is raised, by whatever way in."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NewNotification:
    """What to send to every browser of `user_id`. The database checks it when it is queued
    (`planner_notification_problem()`, migration 0006): `payload` a JSON object of at most 3993
    bytes of JSON text, `urgency` one of RFC 8030's, `topic` up to 32 base64url characters,
    `ttl` 0 to 2,419,200 seconds (None: PLANNER_PUSH_TTL), `dedupe_key` 1 to 200 characters (a
    second notification of the user with the same key within 24 h is dropped)."""

    user_id: uuid.UUID
    payload: dict[str, Any]
    urgency: str = "normal"
    topic: str | None = None
    ttl: int | None = None
    dedupe_key: str | None = None


MAX_TTL = 2_419_200  # four weeks, planner_notification_problem()'s bound too


def unstorable_problem(notification: NewNotification) -> str | None:
    """What PostgreSQL refuses before any rule of ours is asked (U+0000 in text or jsonb, NaN or
    an infinity in jsonb, an integer beyond 32 bits): "argument: reason" for the first, else
    None, so that such a value is a clear refusal rather than a database error."""
    for argument, value in (
        ("payload", notification.payload),
        ("urgency", notification.urgency),
        ("topic", notification.topic),
        ("dedupe_key", notification.dedupe_key),
    ):
        if holds_nul(value):
            return f"{argument}: must not hold the character U+0000"
    if holds_non_finite(notification.payload):
        return "payload: must not hold NaN or an infinity (JSON has neither)"
    ttl = notification.ttl
    if ttl is not None and not 0 <= ttl <= MAX_TTL:
        return f"ttl: must be 0 to {MAX_TTL} seconds, not {ttl}"
    return None


def holds_nul(value: object) -> bool:
    """Whether a JSON value holds U+0000 in a string or a key."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def holds_non_finite(value: object) -> bool:
    """Whether a JSON value holds NaN or an infinity (Python's json reads and writes them)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(holds_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(holds_non_finite(item) for item in value)
    return False
