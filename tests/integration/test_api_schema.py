"""The OpenAPI document tells the truth: schemathesis generates requests for every route from it,
valid and invalid ones, and checks each answer against it with its default checks (status code,
content type, headers, body schema, valid data accepted and invalid data refused; never a 500).

One allowance, for one route: a subscription that has the documented shape may still be refused
with 422 (the contract's status) when its endpoint's host is not on PLANNER_PUSH_ALLOWED_HOSTS
or its `p256dh` is not a point of the P-256 curve, which no JSON Schema can say.
"""

from __future__ import annotations

import uuid

import schemathesis
from hypothesis import HealthCheck, given, note, settings
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
"""


def test_every_route_answers_as_its_openapi_says(runtime: Runtime) -> None:
    with runtime.engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T00:00"))
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(runtime), config=SchemathesisConfig.from_str(CONFIG)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:
        check_operation(operation, GenerationMode.POSITIVE, runtime, user)
        if operation.body or any(operation.iter_parameters()):  # something can be invalid
            check_operation(operation, GenerationMode.NEGATIVE, runtime, user)


def check_operation(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    runtime: Runtime,
    user: uuid.UUID,
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
        case.call_and_validate(headers=bearer(runtime, user))

    check()
