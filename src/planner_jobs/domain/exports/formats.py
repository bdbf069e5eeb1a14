"""The export formats by name: the writer, the file extension and the media type.

The one registry of formats: the API, the CLI, the database's check and every message read their
names here. A new format is a writer next to the others and one entry below.
"""

from __future__ import annotations

import datetime as dt
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
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)


def format_choices() -> str:
    """The format names for a message: `json, csv or markdown`."""
    *first, last = FORMAT_NAMES
    return f"{', '.join(first)} or {last}" if first else last


def file_name(format_name: str, created: dt.date) -> str:
    """What the user's browser saves the file of an export requested on `created` as."""
    return f"planner-export-{created.isoformat()}.{FORMATS[format_name].extension}"
