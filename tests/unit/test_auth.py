from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import jwt
import pytest

from planner_jobs.api.auth import InvalidToken, user_id_from_token

SECRET = "test-secret-" + "x" * 53  # 64 bytes: long enough for HS512 too
USER = uuid.UUID("8a1d2c8e-2f1b-4f57-9d5e-0c7f5e0b6a11")


def in_five_minutes() -> dt.datetime:
    """A valid expiry, taken when the token is made (not at import: the suite can outlast it)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)


def token(secret: str = SECRET, algorithm: str = "HS256", **claims: object) -> str:
    payload: dict[str, object] = {"sub": str(USER), "exp": in_five_minutes()}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm)


def test_a_valid_token_names_its_user() -> None:
    assert user_id_from_token(token(), secret=SECRET) == USER


@pytest.mark.parametrize(
    ("bad_token", "reason"),
    [
        (lambda: token(exp=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)), "expired"),
        (lambda: token(secret="y" * 64), "Signature"),
        (lambda: token(exp=None), "exp"),
        (lambda: token(sub=None), "sub"),
        (lambda: token(sub="not-a-uuid"), "user id"),
        (lambda: token(algorithm="HS512"), "alg value is not allowed"),
        (lambda: "not.a.jwt", "invalid token"),
        (lambda: "", "invalid token"),
    ],
    ids=[
        "expired",
        "wrong-secret",
        "no-exp",
        "no-sub",
        "sub-not-uuid",
        "hs512",
        "garbage",
        "empty",
    ],
)
def test_bad_tokens_are_refused_with_a_reason(bad_token: Callable[[], str], reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        user_id_from_token(bad_token(), secret=SECRET)


def test_unsigned_tokens_are_refused() -> None:
    unsigned = jwt.encode({"sub": str(USER), "exp": in_five_minutes()}, None, "none")

    with pytest.raises(InvalidToken):
        user_id_from_token(unsigned, secret=SECRET)


def test_audience_and_issuer_are_checked_only_when_configured() -> None:
    issued = token(aud="planner", iss="https://planner.example.com")

    assert user_id_from_token(issued, secret=SECRET) == USER
    assert (
        user_id_from_token(
            issued, secret=SECRET, audience="planner", issuer="https://planner.example.com"
        )
        == USER
    )
    with pytest.raises(InvalidToken, match=r"(?i)audience"):
        user_id_from_token(issued, secret=SECRET, audience="someone-else")
    with pytest.raises(InvalidToken, match=r"(?i)issuer"):
        user_id_from_token(issued, secret=SECRET, issuer="https://evil.example.com")
    with pytest.raises(InvalidToken):
        user_id_from_token(token(), secret=SECRET, audience="planner")
