"""`/internal/`: the routes of other services, authenticated by `PLANNER_SERVICE_TOKEN`.

Unset, the routes answer 404 as if they did not exist. The token is compared in constant time,
and before the body is read (`ServiceRoute`): without it the answer is 401 whatever the body,
and no stranger's megabytes are parsed.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from planner_jobs.api.deps import RuntimeDep
from planner_jobs.api.schemas import Body, Problem
from planner_jobs.domain.notifications import MAX_DEPTH, MAX_TTL, NewNotification, text_nesting
from planner_jobs.domain.push import URGENCIES
from planner_jobs.jobs.notifications import RefusedNotifications, raise_all_or_nothing

MAX_BATCH = 1000
MAX_BODY_BYTES = 8 * 1024 * 1024  # 1,000 notifications of 4 KB each, with room to spare
# A body is refused unread beyond this nesting (its payloads' limit plus the envelope, and a
# margin): Python's JSON parser would run out of stack on thousands of levels.
MAX_BODY_DEPTH = MAX_DEPTH + 8

_bearer = HTTPBearer(auto_error=False, description="PLANNER_SERVICE_TOKEN")


def service(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The caller holds the service token (404 when none is configured, 401 otherwise)."""
    token = runtime.settings.service_token
    if token is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    given = credentials.credentials if credentials is not None else ""
    if (
        credentials is None
        or credentials.scheme.lower() != "bearer"
        or not hmac.compare_digest(given.encode(), token.get_secret_value().encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong service token",
            headers={"WWW-Authenticate": "Bearer"},
        )


class ServiceRoute(APIRoute):
    """A route whose caller must hold the service token before anything else happens: FastAPI
    reads and parses a body before it runs a route's dependencies (a stranger's malformed body
    got 422), so the token is checked here first, then the body's size and nesting."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            service(request.app.state.runtime, await _bearer(request))
            await _bounded_body(request)
            return await handle(request)

        return checked


async def _bounded_body(request: Request) -> None:
    """Read the body (FastAPI reuses what is read) and refuse one too large or too deep."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the body is over 8 MiB")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the body is over 8 MiB")
    if text_nesting(body) > MAX_BODY_DEPTH:
        raise RequestValidationError(
            [
                {
                    "loc": ["body"],
                    "msg": f"is nested deeper than {MAX_BODY_DEPTH} levels"
                    f" (a payload may be nested {MAX_DEPTH} deep)",
                    "type": "value_error",
                }
            ]
        )


router = APIRouter(prefix="/internal", tags=["internal"], route_class=ServiceRoute)


# The database checks each notification (planner_notification_problem(), migration 0006); the
# schema below says the same for HTTP clients, and whatever it cannot say (the user exists, the
# payload's size as JSON text) comes back as a 422 naming the item and the field.
class NotificationIn(Body):
    user_id: uuid.UUID
    payload: dict[str, Any] = Field(description="The browser receives its JSON text")
    urgency: str = Field("normal", json_schema_extra={"enum": list(URGENCIES)})
    topic: str | None = Field(None, json_schema_extra={"pattern": "^[A-Za-z0-9_-]{1,32}$"})
    ttl: int | None = Field(None, json_schema_extra={"minimum": 0, "maximum": MAX_TTL})
    dedupe_key: str | None = Field(None, json_schema_extra={"minLength": 1, "maxLength": 200})

    def value(self) -> NewNotification:
        return NewNotification(
            user_id=self.user_id,
            payload=self.payload,
            urgency=self.urgency,
            topic=self.topic,
            ttl=self.ttl,
            dedupe_key=self.dedupe_key,
        )


class NotificationsIn(Body):
    notifications: list[NotificationIn] = Field(min_length=1, max_length=MAX_BATCH)


class NotificationsOut(Body):
    ids: list[int] = Field(
        description="Each item's notification: the earlier one's when its dedupeKey repeats"
    )


_FIELDS = {"user_id": "userId", "dedupe_key": "dedupeKey"}


@router.post(
    "/notifications",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NotificationsOut,
    dependencies=[Depends(service)],
    responses={
        401: {"model": Problem, "description": "The service token is missing or wrong"},
        404: {"model": Problem, "description": "No service token is configured"},
    },
)
def post_notifications(
    body: NotificationsIn, runtime: RuntimeDep
) -> NotificationsOut | JSONResponse:
    """Queue 1 to 1,000 notifications, all or none; each goes to every browser of its user."""
    try:
        ids = raise_all_or_nothing(
            runtime.engine, [item.value() for item in body.notifications], source="http"
        )
    except RefusedNotifications as exc:
        return _refused(exc.problems)
    return NotificationsOut(ids=ids)


def _refused(problems: dict[int, str]) -> JSONResponse:
    """422 naming each bad item's index and field, as FastAPI's own validation does."""
    messages, errors = [], []
    for index, problem in sorted(problems.items()):
        argument, _, reason = problem.partition(": ")
        field = _FIELDS.get(argument, argument)
        messages.append(f"notifications.{index}.{field}: {reason}")
        errors.append(
            {"loc": ["body", "notifications", index, field], "msg": reason, "type": "value_error"}
        )
    return JSONResponse(
        {"message": "; ".join(messages), "detail": errors},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
