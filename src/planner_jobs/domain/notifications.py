"""A notification as it is raised, by whatever way in."""

from __future__ import annotations

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


def nul_problem(notification: NewNotification) -> str | None:
    """PostgreSQL stores no U+0000 in text or jsonb: "argument: reason" for the first value that
    holds one (the database refuses them before any rule is asked), else None."""
    for argument, value in (
        ("payload", notification.payload),
        ("urgency", notification.urgency),
        ("topic", notification.topic),
        ("dedupe_key", notification.dedupe_key),
    ):
        if holds_nul(value):
            return f"{argument}: must not hold the character U+0000"
    return None


def holds_nul(value: object) -> bool:
    """Whether a JSON value holds U+0000 in a string or a key: PostgreSQL's jsonb refuses it
    before any rule is asked."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False
