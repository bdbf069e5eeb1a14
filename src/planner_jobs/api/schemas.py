"""Request and response bodies (camelCase on the wire)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema
from pydantic.alias_generators import to_camel

from planner_jobs.domain.exports.formats import FORMAT_NAMES, format_choices


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def _known_format(name: str) -> str:
    if name not in FORMAT_NAMES:
        raise ValueError(f"must be {format_choices()}")
    return name


# One of the registry's formats (`domain.exports.formats`), documented as an enum.
ExportFormat = Annotated[
    str,
    AfterValidator(_known_format),
    WithJsonSchema({"type": "string", "enum": list(FORMAT_NAMES)}),
]


class ExportRequest(Body):
    format: ExportFormat


class ExportOut(Body):
    id: uuid.UUID
    status: Literal["pending", "processing", "complete", "failed", "expired"]
    format: ExportFormat
    created_at: dt.datetime
    completed_at: dt.datetime | None
    download_url: str | None
    expires_at: dt.datetime | None
    error: str | None
    source: Literal["request", "schedule"] = "request"  # a request, or the user's schedule


class Problem(Body):
    detail: str


class ExportConflictOut(Problem):
    active_export: ExportOut
