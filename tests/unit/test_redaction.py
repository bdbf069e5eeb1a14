"""What `logs.redact` blanks out of a line, and what it leaves for the operator to read."""

from __future__ import annotations

import pytest

from planner_jobs.logs import redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '"GET /api/exports/1/download?expires=17&signature=ab12 HTTP/1.1" 200',
            '"GET /api/exports/1/download?expires=17&signature=[redacted] HTTP/1.1" 200',
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2Fx&X-Amz-Date=1"
            "&X-Amz-Security-Token=tok&X-Amz-Signature=f00",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=[redacted]&X-Amz-Date=1"
            "&X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]",
        ),
        ("/x?status=failed&TOKEN=abc#frag", "/x?status=failed&TOKEN=[redacted]#frag"),
        ("Authorization: Bearer eyJ0eXAi.x.y", "Authorization: Bearer [redacted]"),
        ("authorization: basic YWRtaW46cGFzcw==", "authorization: basic [redacted]"),
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:[redacted]@db:5432/x"),
        ("/admin/jobs?queue=exports&status=failed", "/admin/jobs?queue=exports&status=failed"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
    ],
)
def test_secrets_are_blanked_and_the_rest_kept(line: str, expected: str) -> None:
    assert redact(line) == expected
