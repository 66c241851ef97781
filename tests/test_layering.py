"""Dependencies point one way: api -> service -> {search, workers, storage}."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "service", "search", "workers", "storage")
# Third-party packages live in one room each (DESIGN.md): SQLAlchemy and Alembic only in
# storage, torch only in workers, FastAPI (and its server) only in api, Optuna in search and
# service. `api` reaches the rest through `service` alone.
_SQL = {"sqlalchemy", "alembic", "psycopg"}
_HTTP = {"fastapi", "starlette", "uvicorn"}
FORBIDDEN: dict[str, set[str]] = {
    "api": {"storage", "workers", "search", "torch", "optuna", "ray", *_SQL},
    "service": {"api", "torch", *_SQL, *_HTTP},
    "search": {"api", "service", "workers", "storage", "ray", "torch", *_SQL, *_HTTP},
    "workers": {"api", "service", "search", "storage", "optuna", *_SQL, *_HTTP},
    "storage": {"api", "service", "search", "workers", "optuna", "ray", "torch", *_HTTP},
}


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module a file imports, at any depth of the file."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_package_has_rules() -> None:
    assert set(FORBIDDEN) == set(PACKAGES)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_forbidden(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}, f"{package} must not import these: {offenders}"


def test_the_walker_sees_nested_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import torch.nn\n    from sqlalchemy import select\n")
    assert imported_roots(module) == {"torch", "sqlalchemy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imported_modules(path: Path, known: set[str], name: str = "") -> set[str]:
    """The project's modules a file imports (at any depth of the file): `from a.b import c`
    names a.b.c when that is a module, else a.b."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update(resolve(f"{node.module}.{alias.name}") for alias in node.names)
    return {m for m in found if m is not None} - {name or module_name(path)}


# The rooms of `service` (README, "Architecture"): who decides who gets which slot
# (`cluster`) knows nothing of the rest; what runs one study (`run`) knows nothing of the
# commands and reads above it (`studies`); data sets (`data`) are read by both; what
# listens after a commit (`listeners`) is told by `run` and `studies` and knows neither.
ROOM_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "service.cluster": (
        "service.run",
        "service.studies",
        "service.data",
        "service.runtime",
        "service.settings",
        "service.spec",
        "service.limits",
        "service.metrics",
    ),
    "service.run": ("service.studies", "service.runtime"),
    "service.data": ("service.run", "service.studies", "service.cluster", "service.runtime"),
    "service.studies": ("service.runtime",),
    "service.listeners": (
        "service.cluster",
        "service.run",
        "service.studies",
        "service.data",
        "service.runtime",
    ),
}


@pytest.mark.parametrize("room", sorted(ROOM_FORBIDDEN))
def test_a_room_of_service_imports_no_room_it_must_not(room: str) -> None:
    modules = project_modules()
    offenders = {
        name: sorted(
            m
            for m in imported_modules(path, set(modules))
            if any(m == f or m.startswith(f + ".") for f in ROOM_FORBIDDEN[room])
        )
        for name, path in modules.items()
        if name == room or name.startswith(room + ".")
    }
    offenders = {name: found for name, found in offenders.items() if found}
    assert offenders == {}, f"{room} must not import these: {offenders}"


@pytest.mark.parametrize("room", ["service.cluster", "service.listeners"])
def test_a_self_contained_room_imports_nothing_else_of_service(room: str) -> None:
    modules = project_modules()
    offenders = {
        name: sorted(
            m
            for m in imported_modules(path, set(modules))
            if m.startswith("service") and not (m == room or m.startswith(room + "."))
        )
        for name, path in modules.items()
        if name == room or name.startswith(room + ".")
    }
    offenders = {name: found for name, found in offenders.items() if found}
    assert offenders == {}, f"{room} imports nothing else of service: {offenders}"


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of two or more modules that import each other round a circle (Tarjan's
    strongly connected components, without recursion)."""
    found: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for start in sorted(graph):
        if start in index:
            continue
        enter(start)
        work = [(start, iter(sorted(graph[start])))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                    work.append((child, iter(sorted(graph.get(child, set())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while (member := stack.pop()) != node:
                    on_stack.discard(member)
                    component.append(member)
                on_stack.discard(node)
                component.append(node)
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_modules_import_each_other_in_a_circle() -> None:
    modules = project_modules()
    graph = {name: imported_modules(path, set(modules)) for name, path in modules.items()}
    assert circles(graph) == []


def test_the_circle_finder_sees_a_circle_through_a_nested_import(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text("from b import x\n")
    b.write_text("def f():\n    import c\n")
    c.write_text("import a.thing\n")
    known = {"a", "b", "c"}
    graph = {p.stem: imported_modules(p, known, p.stem) for p in (a, b, c)}
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"a"}}) == []


def test_service_keeps_at_most_twelve_files_at_its_top() -> None:
    top = sorted(p.name for p in (ROOT / "service").glob("*.py"))
    assert len(top) <= 12, top
