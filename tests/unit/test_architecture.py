"""Guards on the layout: which room may import which, no import cycle, and the README and CI
running the same test command.

The import graph is read from the source (every `import`, at module level, in a function or
under `TYPE_CHECKING`): a type-only import is a dependency too.
"""

from __future__ import annotations

import ast
import re
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


ABOVE_THE_ENGINE = (
    "planner_jobs.jobs",
    "planner_jobs.catalogue",
    "planner_jobs.runtime",
    "planner_jobs.inspection",
    "planner_jobs.api",
    "planner_jobs.cli",
    "planner_jobs.service",
)
# (importing room, imported modules it may not reach, why)
FORBIDDEN: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "engine",
        ABOVE_THE_ENGINE,
        "the job engine imports no use case: the catalogue registers them, and the"
        " composition root hands a worker what it runs besides its jobs",
    ),
    (
        "jobs",
        ("planner_jobs.runtime", "planner_jobs.catalogue", "planner_jobs.engine"),
        "a use case names what it needs (engine.context) and defers jobs (engine.defer):"
        " nothing else of the engine, nor the catalogue or the root above it",
    ),
    (
        "db",
        (
            "planner_jobs.runtime",
            "planner_jobs.catalogue",
            "planner_jobs.jobs",
            "planner_jobs.engine",
            "planner_jobs.api",
        ),
        "the database layer is below the job engine, the use cases and their entry points",
    ),
    ("cli", ("planner_jobs.db",), "the CLI goes through the use cases, not the queries"),
    *(
        (
            adapter,
            ("planner_jobs.db", "planner_jobs.engine", *ABOVE_THE_ENGINE),
            "an adapter (export files, Web Push, e-mail) knows the domain and the settings only",
        )
        for adapter in ("storage", "push", "mail")
    ),
)
ALLOWED = {
    # The CLI's one way into `db`: creating and checking the schema is a command of its own.
    ("cli", "planner_jobs.db.migrate"),
    # What a running task needs of the engine.
    ("jobs", "planner_jobs.engine.context"),
    ("jobs", "planner_jobs.engine.defer"),
}


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


def engine_names(text: str) -> list[str]:
    """The job engine's tables and functions a source text names (`procrastinate_jobs`...)."""
    return sorted(set(re.findall(r"\bprocrastinate_[a-z0-9_]+", text)))


def test_only_the_engine_room_and_the_migrations_name_the_job_engines_tables() -> None:
    """Everything about procrastinate's tables and functions lives in `engine/`: an upgrade of
    procrastinate touches that room and a migration, nothing else."""
    offenders = {
        str(path.relative_to(PACKAGE)): names
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in ("engine",)
        and "migrations" not in path.parts
        and (names := engine_names(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_use_cases_import_the_job_engine_only_through_the_engine_room() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / "jobs").rglob("*.py")
        for name in imported_names(path)
        if name.split(".")[0] == "procrastinate"
    }
    assert not offenders


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
    graph["planner_jobs.db.models"].add("planner_jobs.catalogue")
    graph["planner_jobs.cli"].add("planner_jobs.db.rollover")
    graph["planner_jobs.engine.worker"].add("planner_jobs.jobs.outbox")
    graph["planner_jobs.jobs.exports"].add("planner_jobs.engine.worker")

    broken = broken_rules(graph)
    assert [rule.split(":")[0] for rule in broken] == [
        "planner_jobs.cli imports planner_jobs.db.rollover",
        "planner_jobs.db.models imports planner_jobs.catalogue",
        "planner_jobs.engine.worker imports planner_jobs.jobs.outbox",
        "planner_jobs.jobs.exports imports planner_jobs.engine.worker",
        "planner_jobs.jobs.rollover imports planner_jobs.runtime",
    ]
    assert "the job engine imports no use case" in broken[2]
    [cycle] = cycles(graph)
    assert {"planner_jobs.db.models", "planner_jobs.catalogue"} <= set(cycle)
    assert engine_names("UPDATE procrastinate_jobs SET ...; procrastinate_finish_job_v1(") == [
        "procrastinate_finish_job_v1",
        "procrastinate_jobs",
    ]
    assert engine_names("procrastinate.App, the engine's jobs") == []
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
    """Workers and one-off commands start without FastAPI and uvicorn (a good part of start-up),
    and `--version`, `--help` or a refused argument without the database libraries: each command
    imports what it uses."""
    probe = (
        "import sys, planner_jobs.cli; print(*sorted("
        "{'fastapi', 'uvicorn', 'sqlalchemy', 'procrastinate'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""
