"""What the tasks may use, and how a task reaches it.

The composition root builds the collaborators once (`planner_jobs.runtime.Runtime` has each of
them) and the worker hands them to every job through procrastinate's job context. This package
names what it needs here instead of importing the root that builds it: the root sits above the
jobs, and only `jobs.app`'s task wrappers unpack these for the use cases, which take each
collaborator they use as an argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

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


class Rescheduled(Exception):
    """The job asks to run again later (its retry strategy says when): not a failure."""


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
