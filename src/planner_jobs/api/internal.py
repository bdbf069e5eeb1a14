"""`/internal/`: the routes of other services, authenticated by `PLANNER_SERVICE_TOKEN`.

Unset, the routes answer 404 as if they did not exist. The token is compared in constant time.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from planner_jobs.api.deps import RuntimeDep
from planner_jobs.api.schemas import Body, Problem
from planner_jobs.domain.notifications import MAX_TTL, NewNotification
from planner_jobs.domain.push import URGENCIES
from planner_jobs.jobs.notifications import RefusedNotifications, raise_all_or_nothing

MAX_BATCH = 1000

router = APIRouter(prefix="/internal", tags=["internal"])

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
def raise_notifications(
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
