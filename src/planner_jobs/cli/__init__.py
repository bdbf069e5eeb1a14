"""The `planner-jobs` command line: `main` runs the service and its one-off commands
(`cli.main`), and what operators look at and act on (`cli.operate`)."""

from __future__ import annotations

from planner_jobs.cli.main import PROGRESS_BAR_FROM, cli, main
from planner_jobs.cli.operate import exports_group, jobs_group, status, token

cli.add_command(status)
cli.add_command(jobs_group)
cli.add_command(exports_group)
cli.add_command(token)

__all__ = ["PROGRESS_BAR_FROM", "cli", "main"]
