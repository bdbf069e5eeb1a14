"""`/api/push-subscriptions` and `/api/push/public-key`."""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from planner_jobs.api.auth import UNAUTHORIZED, CurrentUserId
from planner_jobs.api.deps import RuntimeDep
from planner_jobs.api.schemas import Body, Problem
from planner_jobs.db import push as db
from planner_jobs.push.subscriptions import subscription_problems

router = APIRouter(tags=["push"])


class SubscriptionKeys(BaseModel):
    # Named as browsers name them (a camelCase alias would be "p256Dh").
    p256dh: str
    auth: str


class SubscriptionIn(Body):
    """A browser's `PushSubscription.toJSON()`."""

    endpoint: str
    expiration_time: float | None = None
    keys: SubscriptionKeys


class SubscriptionOut(Body):
    id: uuid.UUID
    endpoint: str
    expiration_time: dt.datetime | None = None


class PublicKeyOut(Body):
    public_key: str


@router.post(
    "/api/push-subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    responses={
        **UNAUTHORIZED,
        200: {"model": SubscriptionOut, "description": "The endpoint was known"},
    },
)
def subscribe(
    body: SubscriptionIn, user_id: CurrentUserId, runtime: RuntimeDep, response: Response
) -> SubscriptionOut | JSONResponse:
    """Store a subscription (201), or take over a known endpoint for this user (200)."""
    problems = subscription_problems(
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        allowed_hosts=runtime.settings.push_allowed_hosts,
    )
    if problems:
        return JSONResponse(
            {
                "message": "; ".join(f"{field}: {reason}" for field, reason in problems.items()),
                "detail": [
                    {"loc": ["body", *field.split(".")], "msg": reason, "type": "value_error"}
                    for field, reason in problems.items()
                ],
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    with runtime.engine.begin() as connection:
        subscription_id, created = db.upsert_subscription(
            connection,
            user_id,
            endpoint=body.endpoint,
            p256dh=body.keys.p256dh,
            auth=body.keys.auth,
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    expires = (
        dt.datetime.fromtimestamp(body.expiration_time / 1000, dt.UTC)
        if body.expiration_time
        else None
    )
    return SubscriptionOut(id=subscription_id, endpoint=body.endpoint, expiration_time=expires)


@router.delete(
    "/api/push-subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**UNAUTHORIZED, 404: {"model": Problem}},
)
def unsubscribe(
    subscription_id: uuid.UUID, user_id: CurrentUserId, runtime: RuntimeDep
) -> Response:
    with runtime.engine.begin() as connection:
        if not db.delete_subscription(connection, user_id, subscription_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such subscription")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/push/public-key")
def public_key(runtime: RuntimeDep) -> PublicKeyOut:
    """The `applicationServerKey` browsers subscribe with (no authentication needed)."""
    return PublicKeyOut(public_key=runtime.push.keys.application_server_key)
