"""Request and response bodies (camelCase on the wire)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ExportRequest(Body):
    format: Literal["json", "csv", "markdown"]


class ExportOut(Body):
    id: uuid.UUID
    status: Literal["pending", "processing", "complete", "failed", "expired"]
    format: Literal["json", "csv", "markdown"]
    created_at: dt.datetime
    completed_at: dt.datetime | None
    download_url: str | None
    expires_at: dt.datetime | None
    error: str | None


class Problem(Body):
    detail: str


class ExportConflictOut(Problem):
    active_export: ExportOut
