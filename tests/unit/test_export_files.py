"""The three export writers, on data full of Unicode, separators, formulas and Markdown."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from decimal import Decimal

import pytest
from markdown_it import MarkdownIt

from planner_jobs.domain.exports.csv_file import write_csv_zip
from planner_jobs.domain.exports.data import (
    ActivityRow,
    DayRow,
    ExportData,
    GoalRow,
    RoutineRow,
    RoutineTaskRow,
    StreakRow,
    TaskRow,
    UserRow,
)
from planner_jobs.domain.exports.json_file import write_json
from planner_jobs.domain.exports.markdown_file import text, write_markdown

T0 = "2026-03-07T16:15:00+05:45"  # instants come rendered in the user's zone
NASTY = [
    "Plain title",
    'Commas, "quotes", and\nnew lines\r\nand CRLF',
    '=HYPERLINK("http://evil.example")',
    "+1 555 0100",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTabbed",
    "\rReturn",
    "# Not a heading",
    "[a link](http://evil.example) and ![an image](http://evil.example/x.png)",
    "<script>alert(1)</script> <b>bold</b> &amp;",
    "Visit www.evil.example or https://evil.example/now",
    "Ünïcødé 日本語 🧭 emoji",
    "1. not a list\n- neither\n> nor a quote\n===",
    "| not | a table |",
    "`code` *emph* _under_ ~strike~ \\back\\slash",
]


def data() -> ExportData:
    return ExportData(
        exported_at=T0,
        user=UserRow("u-1", "ada@example.com", "Asia/Kathmandu", T0),
        streak=StreakRow(3, 9, "2026-03-06", 1),
        goals=iter(
            [
                GoalRow(f"g-{n}", title, title, "2026-12-31", None, T0)
                for n, title in enumerate(NASTY)
            ]
        ),
        tasks=iter(
            [
                TaskRow(
                    f"t-{n}",
                    title,
                    title,
                    n % 2 == 0,
                    T0 if n % 2 == 0 else None,
                    T0,
                    None,
                    None if n < 3 else f"2026-03-{7 + n % 3:02d}",
                    None,
                    T0,
                )
                for n, title in enumerate(NASTY)
            ]
        ),
        routines=iter(
            [
                RoutineRow(
                    "r-1",
                    NASTY[9],
                    T0,
                    tuple(RoutineTaskRow(f"s-{n}", t, n, False, None) for n, t in enumerate(NASTY)),
                )
            ]
        ),
        history=iter(
            [
                DayRow("2026-03-06", 2, 3, Decimal("66.67"), "freeze"),
                DayRow("2026-03-07", 0, 0, None, None),
            ]
        ),
        activity=iter([ActivityRow(f"a-{n}", "note", t, T0) for n, t in enumerate(NASTY)]),
    )


def render(writer) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    writer(data(), out)
    return out.getvalue()


def test_json_round_trips_every_value() -> None:
    document = json.loads(render(write_json).decode("utf-8"))

    assert document["schemaVersion"] == 1
    assert document["exportedAt"] == "2026-03-07T16:15:00+05:45"
    assert document["user"] == {
        "id": "u-1",
        "email": "ada@example.com",
        "timezone": "Asia/Kathmandu",
        "createdAt": "2026-03-07T16:15:00+05:45",
    }
    assert document["streak"] == {
        "current": 3,
        "longest": 9,
        "lastActivityDate": "2026-03-06",
        "freezes": 1,
    }
    assert [task["title"] for task in document["tasks"]] == NASTY
    assert [task["notes"] for task in document["tasks"]] == NASTY
    assert set(document["tasks"][0]) == {
        "id",
        "title",
        "notes",
        "completed",
        "completedAt",
        "dueAt",
        "remindAt",
        "planDate",
        "goalId",
        "createdAt",
    }
    assert document["tasks"][3]["planDate"] == "2026-03-07"
    assert document["dailyRoutines"][0]["tasks"][2]["title"] == NASTY[2]
    assert document["performanceHistory"] == [
        {
            "day": "2026-03-06",
            "completedTasks": 2,
            "totalTasks": 3,
            "score": 66.67,
            "streakEffect": "freeze",
        },
        {
            "day": "2026-03-07",
            "completedTasks": 0,
            "totalTasks": 0,
            "score": None,
            "streakEffect": None,
        },
    ]
    assert [entry["message"] for entry in document["activityLogs"]] == NASTY


def csv_files(archive_bytes: bytes) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        return {
            name: list(csv.reader(io.StringIO(archive.read(name).decode("utf-8"), newline="")))
            for name in archive.namelist()
        }


def test_csv_is_a_zip_of_rfc4180_files_with_snake_case_headers() -> None:
    raw = render(write_csv_zip)
    files = csv_files(raw)

    assert set(files) == {
        "user.csv",
        "streak.csv",
        "tasks.csv",
        "goals.csv",
        "routine_tasks.csv",
        "performance_history.csv",
        "activity_logs.csv",
    }
    assert files["user.csv"] == [
        ["id", "email", "timezone", "created_at"],
        ["u-1", "ada@example.com", "Asia/Kathmandu", "2026-03-07T16:15:00+05:45"],
    ]
    assert files["tasks.csv"][0] == [
        "id",
        "title",
        "notes",
        "completed",
        "completed_at",
        "due_at",
        "remind_at",
        "plan_date",
        "goal_id",
        "created_at",
    ]
    assert files["streak.csv"] == [
        ["current", "longest", "last_activity_date", "freezes"],
        ["3", "9", "2026-03-06", "1"],
    ]
    assert files["performance_history.csv"] == [
        ["day", "completed_tasks", "total_tasks", "score", "streak_effect"],
        ["2026-03-06", "2", "3", "66.67", "freeze"],
        ["2026-03-07", "0", "0", "", ""],
    ]
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        assert b"\r\n" in archive.read("tasks.csv")  # RFC 4180 line endings


def test_csv_cells_that_would_run_as_formulas_are_quoted() -> None:
    titles = [row[1] for row in csv_files(render(write_csv_zip))["tasks.csv"][1:]]

    expected = []
    for title in NASTY:
        expected.append("'" + title if title[0] in "=+-@\t\r" else title)
    assert titles == expected
    assert titles[1] == NASTY[1]  # commas, quotes and new lines survive intact


def test_markdown_renders_user_text_as_text_only() -> None:
    document = render(write_markdown).decode("utf-8")
    tokens = MarkdownIt("gfm-like").parse(document)
    html = MarkdownIt("gfm-like").render(document)

    headings = [t for t in tokens if t.type == "heading_open"]
    heading_texts = [
        tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"
    ]
    assert all(not t.startswith("Not a heading") for t in heading_texts)
    assert len(headings) == len(heading_texts)
    inline = [child for t in tokens if t.children for child in t.children]
    assert not [c for c in inline if c.type in ("link_open", "image", "html_inline")]
    assert not [t for t in tokens if t.type == "html_block"]
    assert "<script>" not in html
    assert "<b>" not in html
    assert "Ünïcødé 日本語 🧭 emoji" in html
    assert "#" in html  # the characters are kept, only neutralised


@pytest.mark.parametrize("value", NASTY)
def test_escaped_text_shows_the_same_characters(value: str) -> None:
    rendered = MarkdownIt("gfm-like").renderInline(text(value))
    unescaped = (
        rendered.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&amp;", "&")
    )

    assert unescaped == " ".join(value.splitlines())


def test_markdown_says_what_each_day_did_to_the_streak_and_the_freezes_held() -> None:
    document = render(write_markdown).decode("utf-8")

    assert "streak freezes held: 1." in document
    assert "| Day | Completed | Total | Score | Streak |" in document
    assert "| 2026-03-06 | 2 | 3 | 66.67% | kept (freeze used) |" in document
    assert "| 2026-03-07 | 0 | 0 | n/a |  |" in document
