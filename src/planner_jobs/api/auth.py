"""Bearer-token authentication: HS256 JWTs issued by the main app, `sub` = the user's id."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from planner_jobs.api.deps import RuntimeDep
from planner_jobs.api.schemas import Problem
from planner_jobs.db.users import user_exists
from planner_jobs.errors import PlannerError


class InvalidToken(PlannerError):
    """The bearer token is not valid."""


def user_id_from_token(
    token: str, *, secret: str, audience: str | None = None, issuer: str | None = None
) -> uuid.UUID:
    """The user a token speaks for; `InvalidToken` says why it is refused."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "sub"], "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"invalid token: {exc}") from None
    try:
        return uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise InvalidToken("invalid token: sub is not a user id") from None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


_bearer = HTTPBearer(auto_error=False, description="A JWT issued by the Proactive Planner")


async def token_user_id(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> uuid.UUID:
    """The user the bearer token speaks for, checked without the database (for a route that
    asks the database about the user anyway, or must not hold a thread: an event stream)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    settings = runtime.settings
    try:
        user_id = user_id_from_token(
            credentials.credentials,
            secret=settings.jwt_secret.get_secret_value(),
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None
    return user_id


def current_user_id(
    runtime: RuntimeDep, user_id: Annotated[uuid.UUID, Depends(token_user_id)]
) -> uuid.UUID:
    """The token's user, who must exist."""
    with runtime.engine.connect() as connection:
        known = user_exists(connection, user_id)
    if not known:
        raise _unauthorized("the token's user does not exist")
    return user_id


CurrentUserId = Annotated[uuid.UUID, Depends(current_user_id)]
TokenUserId = Annotated[uuid.UUID, Depends(token_user_id)]

# The OpenAPI answer of every route that takes `CurrentUserId`.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "The bearer token is missing, invalid or expired"}
}
