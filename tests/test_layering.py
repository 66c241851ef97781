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
}  # fmt: skip


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
