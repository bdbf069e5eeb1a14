"""Export files in a local folder, served by the API through signed, expiring links."""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from planner_jobs.storage.port import StorageError
from planner_jobs.storage.signing import signature


@dataclass(frozen=True)
class LocalStorage:
    root: Path
    public_url: str
    secret: str

    def put(self, key: str, source: Path, *, media_type: str) -> None:
        target = self.path_of(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)  # same file system: one atomic rename
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            # Another file system: copied to a hidden name of this key (a retry overwrites
            # it), then renamed, so a reader sees the whole file or nothing.
            staging = target.with_name(f".{target.name}.part")
            try:
                shutil.copyfile(source, staging)
                os.replace(staging, target)
            finally:
                staging.unlink(missing_ok=True)
            source.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not store the export file: {exc.strerror}") from exc

    def link(self, key: str, *, export_id: str, filename: str, expires_at: dt.datetime) -> str:
        expires = int(expires_at.timestamp())
        query = urlencode(
            {"expires": expires, "signature": signature(export_id, expires, self.secret)}
        )
        return f"{self.public_url}/api/exports/{export_id}/download?{query}"

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def served_file(self, key: str) -> Path:
        return self.path_of(key)

    def path_of(self, key: str) -> Path:
        """The file of `key`; keys are ours (never user text), and must stay inside the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StorageError(f"storage key {key!r} leaves the storage folder")
        return path
