"""Guards on the layout: the domain stays pure, the README and CI run the same test command."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import planner_jobs

PACKAGE = Path(planner_jobs.__file__).parent
REPOSITORY = PACKAGE.parent.parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the domain package itself
                continue
            names.add(node.module or "")
    return names


def test_the_domain_imports_nothing_but_the_standard_library_and_itself() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / "domain").rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith("planner_jobs.domain")
    }
    assert not offenders


def readme_commands() -> list[str]:
    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    start = text.index("## Quick start")
    block = text[start:].split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip()]


def test_the_readme_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    commands = readme_commands()

    assert len(commands) == 2
    assert commands[1] in (REPOSITORY / ".ci" / "run").read_text(encoding="utf-8")


def test_the_command_line_loads_the_http_stack_only_to_serve_it() -> None:
    """Workers and one-off commands start without FastAPI and uvicorn (a good part of start-up)."""
    probe = (
        "import sys, planner_jobs.cli; print(*sorted({'fastapi', 'uvicorn'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""
