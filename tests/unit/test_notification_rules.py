"""What is refused before the database is asked: nesting, U+0000, NaN, a TTL out of range; all
walked without recursion, so no payload can exhaust the stack."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_jobs.domain.notifications import (
    MAX_DEPTH,
    NewNotification,
    scan,
    text_nesting,
    unstorable_problem,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=20,
)


def reference_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


@given(JSON)
def test_the_depth_is_the_recursive_definitions(value: object) -> None:
    assert scan(value)[0] == reference_depth(value)


@given(JSON)
def test_the_depth_of_a_json_text_is_the_depth_of_its_value(value: object) -> None:
    assert text_nesting(json.dumps(value).encode()) == reference_depth(value)


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"title": "x"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def notification(payload: dict[str, Any]) -> NewNotification:
    return NewNotification(user_id=uuid.UUID(int=1), payload=payload)


def test_32_levels_pass_and_33_are_refused_naming_the_payload() -> None:
    assert unstorable_problem(notification(nested(MAX_DEPTH))) is None
    assert unstorable_problem(notification(nested(MAX_DEPTH + 1))) == (
        "payload: must not be nested deeper than 32 levels"
    )


@pytest.mark.parametrize("levels", [600, 50_000])
def test_a_payload_nested_thousands_deep_is_refused_not_a_recursion_error(levels: int) -> None:
    assert unstorable_problem(notification(nested(levels))) == (
        "payload: must not be nested deeper than 32 levels"
    )


def test_a_nul_or_nan_anywhere_is_found() -> None:
    assert unstorable_problem(notification({"a": [{"b\x00": 1}]})) == (
        "payload: must not hold the character U+0000"
    )
    assert unstorable_problem(notification({"a": [1, {"b": float("inf")}]})) == (
        "payload: must not hold NaN or an infinity (JSON has neither)"
    )


def test_brackets_inside_strings_are_not_nesting() -> None:
    assert text_nesting(b'{"a": "[[[{{{\\"]]]", "b": [1]}') == 2
    assert text_nesting(b"[" * 5000 + b"]" * 5000) == 5000
