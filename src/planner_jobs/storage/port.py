"""The storage port: what the export jobs and the API need of a place to keep export files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol

from planner_jobs.errors import PlannerError


class StorageError(PlannerError):
    """The storage refused or failed an operation."""


class TransientStorageError(StorageError):
    """The storage failed in a way worth retrying (a 5xx, a lost connection)."""


class Storage(Protocol):
    def put(self, key: str, source: Path, *, media_type: str) -> None:
        """Store the finished file `source` under `key` (and consume `source`).

        Nothing is visible under `key` until the whole file is there; a file already under
        `key` is replaced.
        """

    def link(self, key: str, *, export_id: str, filename: str, expires_at: dt.datetime) -> str:
        """An absolute URL that downloads the file as `filename` until `expires_at`."""

    def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error."""

    def served_file(self, key: str) -> Path | None:
        """The file of `key` when the API serves this storage's downloads itself (its links
        point at the API); None when the links lead to the storage service directly."""
