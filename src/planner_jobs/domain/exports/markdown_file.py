"""The Markdown export: one readable document.

Every piece of user text is escaped so it renders as the text it is: it cannot open a heading,
a list, a link, an image or HTML. Line breaks inside a title become spaces; notes keep their
lines inside a block quote, each line escaped.
"""

from __future__ import annotations

import string
from typing import IO

from planner_jobs.domain.exports.data import SCHEMA_VERSION, ExportData

# What closing each day did to the streak, as the history table says it.
STREAK_EFFECT_WORDS = {
    "extended": "extended",
    "vacation": "kept (vacation)",
    "day_off": "kept (day off)",
    "freeze": "kept (freeze used)",
    "reset": "reset",
}
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BACKSLASHED = frozenset(string.punctuation) - set(_HTML)


def text(value: str) -> str:
    """`value` as inert inline Markdown, on one line."""
    one_line = " ".join(value.splitlines()) if value else ""
    escaped = []
    for char in one_line:
        if char in _HTML:
            escaped.append(_HTML[char])
        elif char in _BACKSLASHED:
            escaped.append("\\" + char)
        else:
            escaped.append(char)
    return "".join(escaped)


def quote(value: str, indent: str = "") -> str:
    """Multi-line user text as an escaped block quote."""
    return "".join(
        f"{indent}> {text(line)}\n" if line.strip() else f"{indent}>\n"
        for line in value.splitlines()
    )


def write_markdown(data: ExportData, out: IO[bytes]) -> None:
    def w(line: str = "") -> None:
        out.write((line + "\n").encode())

    user = data.user
    w("# Proactive Planner export")
    w()
    w(f"Exported {_when(data.exported_at)} (schema version {SCHEMA_VERSION}).")
    w()
    w("## Account")
    w()
    w(f"- Email: {text(user.email)}")
    w(f"- Time zone: {text(user.timezone)}")
    w(f"- Member since: {_when(user.created_at)}")
    w()
    w("## Streak")
    w()
    if data.streak is None:
        w("No day closed yet.")
    else:
        last = data.streak.last_activity_date
        w(
            f"Current streak: {data.streak.current} days; longest: {data.streak.longest} days"
            + (f"; last day that met the goal: {last}" if last else "")
            + f"; streak freezes held: {data.streak.freezes}."
        )
    w()
    w("## Goals")
    w()
    any_goal = False
    for goal in data.goals:
        any_goal = True
        target = f" (target {goal.target_date})" if goal.target_date else ""
        done = f", completed {_when(goal.completed_at)}" if goal.completed_at else ""
        w(f"- [{'x' if goal.completed_at else ' '}] {text(goal.title)}{target}{done}")
        if goal.description:
            out.write(quote(goal.description, indent="  ").encode())
    if not any_goal:
        w("No goals.")
    w()
    w("## Tasks")
    current: object = ()
    for task in data.tasks:
        if task.plan_date != current:
            current = task.plan_date
            w()
            w(f"### Plan for {task.plan_date}" if task.plan_date else "### Inbox")
            w()
        details = []
        if task.due_at:
            details.append(f"due {_when(task.due_at)}")
        if task.remind_at:
            details.append(f"reminder {_when(task.remind_at)}")
        if task.completed_at:
            details.append(f"completed {_when(task.completed_at)}")
        suffix = f" ({'; '.join(details)})" if details else ""
        w(f"- [{'x' if task.completed else ' '}] {text(task.title)}{suffix}")
        if task.notes:
            out.write(quote(task.notes, indent="  ").encode())
    if current == ():
        w()
        w("No tasks.")
    w()
    w("## Daily routines")
    for routine in data.routines:
        w()
        w(f"### {text(routine.name)}")
        w()
        for step in routine.tasks:
            w(f"{step.position}. [{'x' if step.completed else ' '}] {text(step.title)}")
    w()
    w("## Performance history")
    w()
    w("| Day | Completed | Total | Score | Streak |")
    w("|---|---:|---:|---:|---|")
    for day in data.history:
        score = "n/a" if day.score is None else f"{day.score}%"
        effect = STREAK_EFFECT_WORDS.get(day.streak_effect or "", "")
        w(f"| {day.day} | {day.completed_tasks} | {day.total_tasks} | {score} | {effect} |")
    w()
    w("## Activity log")
    w()
    for entry in data.activity:
        w(f"- {_when(entry.created_at)} {text(entry.kind)}: {text(entry.message)}")


def _when(value: str | None) -> str:
    """An ISO instant to the minute, offset kept (2026-03-07T16:15+05:45)."""
    if not value:
        return ""
    return value[:16] + value[19:].lstrip(".0123456789") if len(value) > 19 else value
