"""The three export formats by name: the writer, the file extension and the media type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from planner_jobs.domain.exports.csv_file import write_csv_zip
from planner_jobs.domain.exports.data import ExportData
from planner_jobs.domain.exports.json_file import write_json
from planner_jobs.domain.exports.markdown_file import write_markdown


@dataclass(frozen=True)
class Format:
    name: str
    write: Callable[[ExportData, IO[bytes]], None]
    extension: str
    media_type: str
    groups_tasks_by_plan: bool = False  # the writer wants tasks by plan date, inbox first


FORMATS = {
    "json": Format("json", write_json, "json", "application/json"),
    "csv": Format("csv", write_csv_zip, "zip", "application/zip"),
    "markdown": Format(
        "markdown", write_markdown, "md", "text/markdown; charset=utf-8", groups_tasks_by_plan=True
    ),
}


def file_name(format_name: str, day: str) -> str:
    """What the user's browser saves the file as."""
    return f"planner-export-{day}.{FORMATS[format_name].extension}"
