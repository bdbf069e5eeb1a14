"""Guards on the layout: which room may import which, no import cycle, and the README and CI
running the same test command.

The import graph is read from the source (every `import`, at module level, in a function or
under `TYPE_CHECKING`): a type-only import is a dependency too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import planner_jobs

PACKAGE = Path(planner_jobs.__file__).parent
REPOSITORY = PACKAGE.parent.parent
ROOT = "planner_jobs"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Absolute names imported by the file (`from a.b import c` gives `a.b` and `a.b.c`)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the modules of the package it imports."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        module: {name for name in imported_names(path) if name in files and name != module}
        for module, path in files.items()
    }


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one importing itself
    (Tarjan's algorithm): each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def room(module: str) -> str:
    """`planner_jobs.jobs.exports` -> `jobs`; `planner_jobs.cli` -> `cli`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# (importing room, imported modules it may not reach, why)
FORBIDDEN: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("jobs", ("planner_jobs.runtime",), "jobs name what they need (jobs.context)"),
    (
        "db",
        ("planner_jobs.runtime", "planner_jobs.jobs", "planner_jobs.api"),
        "the database layer is below the use cases and their entry points",
    ),
    ("cli", ("planner_jobs.db",), "the CLI goes through the use cases, not the queries"),
)
# The CLI's one way into `db`: creating and checking the schema is a command of its own.
ALLOWED = {("cli", "planner_jobs.db.migrate")}


def broken_rules(graph: Mapping[str, Iterable[str]]) -> list[str]:
    broken = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            for importer, forbidden, why in FORBIDDEN:
                if room(module) != importer or (importer, target) in ALLOWED:
                    continue
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    broken.append(f"{module} imports {target}: {why}")
    return broken


def test_no_room_imports_what_it_may_not() -> None:
    assert broken_rules(import_graph()) == []


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_domain_imports_nothing_but_the_standard_library_and_itself() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / "domain").rglob("*.py")
        for name in imported_names(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith("planner_jobs.domain")
    }
    assert not offenders


def test_the_checks_catch_a_cycle_and_a_forbidden_import() -> None:
    """The guards above are only worth something if they can fail."""
    graph = import_graph()
    graph["planner_jobs.jobs.rollover"].add("planner_jobs.runtime")
    graph["planner_jobs.db.models"].add("planner_jobs.jobs.app")
    graph["planner_jobs.cli"].add("planner_jobs.db.rollover")

    assert broken_rules(graph) == [
        "planner_jobs.cli imports planner_jobs.db.rollover: "
        "the CLI goes through the use cases, not the queries",
        "planner_jobs.db.models imports planner_jobs.jobs.app: "
        "the database layer is below the use cases and their entry points",
        "planner_jobs.jobs.rollover imports planner_jobs.runtime: "
        "jobs name what they need (jobs.context)",
    ]
    [cycle] = cycles(graph)
    assert {"planner_jobs.db.models", "planner_jobs.jobs.app"} <= set(cycle)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("source", "imported"),
    [
        ("from planner_jobs.storage.port import Storage", "planner_jobs.storage.port"),
        ("from planner_jobs.jobs import exports", "planner_jobs.jobs.exports"),
        ("from . import port", "planner_jobs.storage.port"),
        ("from .port import Storage", "planner_jobs.storage.port"),
        ("import planner_jobs.settings", "planner_jobs.settings"),
    ],
)
def test_imports_are_read_whatever_their_form(
    tmp_path: Path, source: str, imported: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "planner_jobs" / "storage" / "local.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"if TYPE_CHECKING:\n    {source}\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "planner_jobs")

    assert imported in imported_names(fake)


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
