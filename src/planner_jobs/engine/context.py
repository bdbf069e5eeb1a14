"""What a running task may use, and how it reaches it: the one module of the job engine that
use cases import besides deferring (`engine.defer`).

The composition root builds the collaborators once (`planner_jobs.runtime.Runtime` has each of
them) and the worker hands them to every job through procrastinate's job context. The engine
names what they are here instead of importing the root that builds them: the root sits above
the engine, and only the catalogue's task wrappers unpack them for the use cases, which take
each collaborator they use as an argument. The job engine's exceptions a task meets are named
here too, so that no use case imports procrastinate.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from procrastinate import JobContext
from procrastinate.exceptions import ConnectorException as QueryFailed
from procrastinate.exceptions import JobAborted

from planner_jobs.errors import PlannerError

if TYPE_CHECKING:  # named here, built by the composition root, loaded by whoever runs jobs
    import threading

    import procrastinate
    from sqlalchemy.engine import Engine

    from planner_jobs.metrics import Metrics
    from planner_jobs.push.service import PushService
    from planner_jobs.settings import Settings
    from planner_jobs.storage.port import Storage
    from planner_jobs.storage.staging import StagingArea

CONTEXT_KEY = "collaborators"

__all__ = [
    "CONTEXT_KEY",
    "Collaborators",
    "JobAborted",
    "JobContext",
    "QueryFailed",
    "Rescheduled",
]
# JobAborted: a task raises it when `should_abort` says the worker is stopping (it is retried).
# QueryFailed: what a query on the job engine's pool raises (its cause is the driver's error).


class Rescheduled(Exception):
    """The job asks to run again at `at` (`engine.retry`): not a failure."""

    def __init__(self, at: dt.datetime, message: str) -> None:
        super().__init__(message)
        self.at = at


class Collaborators(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def job_app(self) -> procrastinate.App: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def staging(self) -> StagingArea: ...

    @property
    def push(self) -> PushService: ...

    @property
    def stopping(self) -> threading.Event:
        """Set once the process is asked to stop: a long task ends at its next safe point."""
        ...


def collaborators_of(context: procrastinate.JobContext) -> Collaborators:
    """The collaborators the worker running this job was started with."""
    found = context.additional_context.get(CONTEXT_KEY)
    if found is None:
        raise PlannerError("this worker was started without its collaborators in the job context")
    return found  # type: ignore[no-any-return]
