"""One exception tree: every expected failure is a `PlannerError` with a one-line message.

The CLI prints `planner-jobs: error: <message>` for these and exits non-zero; the HTTP API maps
them to precise statuses. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PlannerError(Exception):
    """planner-jobs could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class ConfigurationError(PlannerError):
    """A setting is missing or invalid."""


class DatabaseUnavailable(PlannerError):
    """The database does not answer."""


class UsageError(PlannerError):
    """A command was called with arguments it cannot use."""
