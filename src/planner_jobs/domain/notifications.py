"""A notification as it is raised, by whatever way in."""

from __future__ import annotations

import math
import re
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


DECLARATIVE = 8030  # `web_push` of WebKit's declarative form (the RFC that defines Web Push)


@dataclass(frozen=True)
class AppLinks:
    """Where planner-jobs' own notifications lead. With the planner's web app known (`base`,
    PLANNER_APP_URL), each is sent in WebKit's declarative form: Safari 18.4+ shows it without a
    service worker and opens `navigate` when it is clicked; `mutable` lets a service worker, where
    there is one, read the same JSON and show it its own way. Without it, as before."""

    base: str | None = None

    def shown(self, content: dict[str, Any], *, path: str) -> dict[str, Any]:
        """`content` (`title`, `body`, `tag`, `data`) as the payload, leading to `path` in the
        app (`/tasks/{id}`, `/exports/{id}`, `/streak`)."""
        if self.base is None:
            return content
        return declarative(content, navigate=self.base + path)


def declarative(content: dict[str, Any], *, navigate: str) -> dict[str, Any]:
    """`content` (`title`, `body`, ...) as a declarative message opening `navigate` when
    clicked, `mutable` so that a service worker may show it its own way."""
    return {
        "web_push": DECLARATIVE,
        "notification": {**content, "navigate": navigate},
        "mutable": True,
    }


NO_LINKS = AppLinks()

MAX_TTL = 2_419_200  # four weeks, planner_notification_problem()'s bound too
MAX_DEPTH = 32  # levels of objects and arrays in a payload (itself the first); the SQL's too


def unstorable_problem(notification: NewNotification) -> str | None:
    """What is refused before any rule of the database is asked: a payload nested deeper than
    `MAX_DEPTH` (checked first, without recursion), and what PostgreSQL itself refuses (U+0000
    in text or jsonb, NaN or an infinity in jsonb, an integer beyond 32 bits): "argument:
    reason" for the first, else None, so that such a value is a clear refusal rather than a
    database error."""
    depth, nul, non_finite = scan(notification.payload)
    if depth > MAX_DEPTH:
        return f"payload: must not be nested deeper than {MAX_DEPTH} levels"
    if nul:
        return "payload: must not hold the character U+0000"
    for argument, value in (
        ("urgency", notification.urgency),
        ("topic", notification.topic),
        ("dedupe_key", notification.dedupe_key),
    ):
        if value is not None and "\x00" in value:
            return f"{argument}: must not hold the character U+0000"
    if non_finite:
        return "payload: must not hold NaN or an infinity (JSON has neither)"
    ttl = notification.ttl
    if ttl is not None and not 0 <= ttl <= MAX_TTL:
        return f"ttl: must be 0 to {MAX_TTL} seconds, not {ttl}"
    return None


def scan(payload: object) -> tuple[int, bool, bool]:
    """One pass over a payload, without recursion: how deep it nests (no further than
    `MAX_DEPTH` + 1), whether a string or key holds U+0000, whether a number is not finite.
    (A sweep raising 100,000 reminders checks each: three walks cost 63 µs a payload.)"""
    deepest, nul, non_finite = 0, False, False
    stack: list[tuple[object, int]] = [(payload, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            for key, value in item.items():
                nul = nul or "\x00" in key
                stack.append((value, depth + 1))
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, str):
            nul = nul or "\x00" in item
        elif isinstance(item, float):
            non_finite = non_finite or not math.isfinite(item)
    return deepest, nul, non_finite


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def text_nesting(text: bytes) -> int:
    """The deepest nesting of objects and arrays in a JSON text (strings skipped), counted
    without parsing it; malformed text gives some number and is refused by the parser later."""
    deepest = depth = 0
    for bracket in _STRING.sub(b"", text).translate(None, _NOT_A_BRACKET):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


_TOKEN_SPACE = re.compile(r'("(?:[^"\\]|\\.)*")| ')


def compact_json_text(text: str) -> str:
    """PostgreSQL's rendering of a JSON value (`{"a": [1, 2]}`) without the spaces it puts
    between tokens (`{"a":[1,2]}`), strings kept as they are: the text a browser receives. The
    same expression as the SQL function `planner_json_compact()`; idempotent."""
    return _TOKEN_SPACE.sub(r"\1", text)
