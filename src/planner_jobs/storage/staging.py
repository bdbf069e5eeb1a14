"""The staging folder: where an export is written before storage takes it.

Each export writes one file named after it (`.export-<id>`), holding an exclusive `flock` on it
from the moment it opens the file until storage has taken it. The lock dies with its process, so
a file nobody holds a lock on belongs to an attempt that died (SIGKILL, a lost host): `sweep()`
removes those, and a retry of the same export on this machine takes its file over. POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from planner_jobs.storage.port import TransientStorageError

log = logging.getLogger(__name__)

PREFIX = ".export-"


@dataclass(frozen=True)
class Staged:
    path: Path
    file: BinaryIO


class StagingArea:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def open(self, export_id: uuid.UUID) -> Iterator[Staged]:
        """The export's staging file, empty, locked and open for writing until the block ends;
        then it is gone (taken by storage, or removed)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{PREFIX}{export_id}"
        descriptor = _lock(path)
        if descriptor is None:
            raise TransientStorageError(f"another attempt is writing export {export_id} here")
        try:
            os.ftruncate(descriptor, 0)
            with os.fdopen(descriptor, "w+b", closefd=False) as file:
                yield Staged(path, file)
        finally:
            # Removed while still locked, so a sweep never sees it unlocked; gone already when
            # storage took it.
            _unlink_if_same(path, descriptor)
            os.close(descriptor)

    def sweep(self) -> int:
        """Remove the files of attempts that died; return how many."""
        removed = 0
        try:
            candidates = [p for p in self.folder.iterdir() if p.name.startswith(PREFIX)]
        except FileNotFoundError:
            return 0
        for path in candidates:
            descriptor = _lock(path, create=False)
            if descriptor is None:
                continue  # being written, or gone meanwhile
            try:
                if _unlink_if_same(path, descriptor):
                    removed += 1
            finally:
                os.close(descriptor)
        if removed:
            log.warning("removed %d staging files of exports whose worker died", removed)
        return removed


def _lock(path: Path, *, create: bool = True) -> int | None:
    """A descriptor of `path` holding its exclusive lock, `path` still naming that file; None
    when someone else holds the lock (or, without `create`, the file is gone)."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        if _names(path, descriptor):
            return descriptor
        # A sweep removed the file between our open and our lock: open the new one.
        os.close(descriptor)
        if not create:
            return None


def _names(path: Path, descriptor: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def _unlink_if_same(path: Path, descriptor: int) -> bool:
    if _names(path, descriptor):
        path.unlink(missing_ok=True)
        return True
    return False
