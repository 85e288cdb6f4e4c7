"""The shape of the code: a pure core that never imports its adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import fairshare

PACKAGE = Path(fairshare.__file__).parent
ADAPTERS = {"cli", "cli_simulate", "storage", "registry", "api", "web"}
ADAPTER_LIBRARIES = {"typer", "rich", "click", "sqlalchemy", "fastapi", "alembic", "httpx"}


def _core_modules() -> list[Path]:
    out = []
    for path in PACKAGE.rglob("*.py"):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if top not in ADAPTERS:
            out.append(path)
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_never_imports_adapters() -> None:
    modules = _core_modules()
    assert len(modules) >= 4
    for path in modules:
        for name in _imports(path):
            parts = name.split(".")
            assert parts[0] not in ADAPTER_LIBRARIES, f"{path.name} imports {name}"
            if parts[0] == "fairshare" and len(parts) > 1:
                assert parts[1] not in ADAPTERS, f"{path.name} imports {name}"


def test_package_never_reads_the_shared_folder() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert "../shared" not in path.read_text("utf-8"), path
