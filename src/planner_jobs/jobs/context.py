"""How a task reaches the composition root: the worker puts the `Runtime` in the job context."""

from __future__ import annotations

from typing import TYPE_CHECKING

import procrastinate

from planner_jobs.errors import PlannerError

if TYPE_CHECKING:
    from planner_jobs.runtime import Runtime


def runtime_of(context: procrastinate.JobContext) -> Runtime:
    """The `Runtime` the worker was started with."""
    runtime = context.additional_context.get("runtime")
    if runtime is None:
        raise PlannerError("this worker was started without a runtime in its job context")
    return runtime  # type: ignore[no-any-return]
