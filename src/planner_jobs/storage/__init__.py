"""Private storage for export files, behind one small port (`port.Storage`): local files or S3.

`open_storage(settings)` picks the adapter from `PLANNER_STORAGE_URL`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from planner_jobs.errors import ConfigurationError
from planner_jobs.settings import Settings
from planner_jobs.storage.local import LocalStorage
from planner_jobs.storage.port import Storage, StorageError, TransientStorageError

__all__ = ["Storage", "StorageError", "TransientStorageError", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    location = urlsplit(settings.storage_location)
    if location.scheme == "file":
        return LocalStorage(
            root=Path(location.path),
            public_url=settings.public_url,
            secret=settings.signing_secret.get_secret_value(),
        )
    if location.scheme == "s3":
        from planner_jobs.storage.s3 import S3Storage  # boto3 is loaded only where it is used

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
