"""Private storage for export files, behind one small interface: local files or S3.

`open_storage(settings)` picks the adapter from `PLANNER_STORAGE_URL`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from planner_jobs.errors import ConfigurationError, PlannerError
from planner_jobs.settings import Settings


class StorageError(PlannerError):
    """The storage refused or failed an operation."""


class TransientStorageError(StorageError):
    """The storage failed in a way worth retrying (a 5xx, a lost connection)."""


class Storage(Protocol):
    def put(self, key: str, source: Path, *, media_type: str) -> None:
        """Store the finished file `source` under `key` (and consume `source`).

        Nothing is visible under `key` until the whole file is there.
        """

    def link(self, key: str, *, export_id: str, filename: str, expires_at: dt.datetime) -> str:
        """An absolute URL that downloads the file as `filename` until `expires_at`."""

    def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error."""


def open_storage(settings: Settings) -> Storage:
    location = urlsplit(settings.storage_location)
    if location.scheme == "file":
        from planner_jobs.storage.local import LocalStorage

        return LocalStorage(
            root=Path(location.path),
            public_url=settings.public_url,
            secret=settings.signing_secret.get_secret_value(),
        )
    if location.scheme == "s3":
        from planner_jobs.storage.s3 import S3Storage

        if not location.netloc:
            raise ConfigurationError(
                "PLANNER_STORAGE_URL: s3:// needs a bucket (s3://bucket/prefix)"
            )
        return S3Storage.connect(
            bucket=location.netloc,
            prefix=location.path.strip("/"),
            endpoint_url=settings.s3_endpoint_url,
        )
    raise ConfigurationError(f"PLANNER_STORAGE_URL: unsupported scheme {location.scheme!r}")
