"""The OpenAPI document tells the truth: schemathesis generates requests for every route from it,
valid and invalid ones, and checks each answer against it with its default checks (status code,
content type, headers, body schema, valid data accepted and invalid data refused; never a 500).

Two routes may refuse with 422 (the contract's status) a request of the documented shape, for
what no JSON Schema can say: a subscription whose endpoint's host is not on
PLANNER_PUSH_ALLOWED_HOSTS or whose `p256dh` is not a point of the P-256 curve; a notification
for a user that does not exist, or whose payload is over 3993 bytes as JSON text.

The routes of users get a user's token, those of services the service token.
"""

from __future__ import annotations

import dataclasses

import schemathesis
from hypothesis import HealthCheck, given, note, settings
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from planner_jobs.api.app import create_app
from planner_jobs.runtime import Runtime
from tests.data import add_user, utc
from tests.integration.conftest import bearer

CONFIG = """
[[operations]]
include-name = "POST /api/push-subscriptions"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "422"]

[[operations]]
include-name = "POST /internal/notifications"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "422"]
"""
SERVICE_TOKEN = "a-service-token-of-at-least-32-bytes!"


def test_every_route_answers_as_its_openapi_says(runtime: Runtime) -> None:
    with runtime.engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
    settings_ = runtime.settings.model_copy(update={"service_token": SecretStr(SERVICE_TOKEN)})
    runtime = dataclasses.replace(runtime, settings=settings_)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(runtime), config=SchemathesisConfig.from_str(CONFIG)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:
        if operation.path.startswith("/internal/"):
            headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
        else:
            headers = bearer(runtime, user)
        check_operation(operation, GenerationMode.POSITIVE, headers)
        if operation.body or any(operation.iter_parameters()):  # something can be invalid
            check_operation(operation, GenerationMode.NEGATIVE, headers)


def check_operation(
    operation: schemathesis.APIOperation, mode: GenerationMode, headers: dict[str, str]
) -> None:
    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        note(f"{operation.label} ({mode.value})")
        case.call_and_validate(headers=headers)

    check()
